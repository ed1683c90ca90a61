/// @file io/lora_merge.hpp
/// @brief Merging a LoRA model into plain base weights: copy_base_weights by name, then W += (alpha / r) B A; and
///        saving a LoRA network as the merged HF checkpoint.
#pragma once

#include <string>

#include "polyalpaca/graph/parameter_store.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/hf_weights.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/models/causal_lm.hpp"

namespace polyalpaca::io {

/// Copies every parameter of `dst` from the parameter of the same name and shape in `src`. LoRA weights of `src`
/// are left out; any other weight of `src` that `dst` lacks (or the reverse) is an Error.
template <class Backend, class T>
void copy_base_weights(typename Backend::Context& ctx, ParameterStore<Backend, T> const& src,
                       ParameterStore<Backend, T>& dst) {
    for (auto* d : dst.parameters()) {
        auto const* s = src.find(d->name);
        require(s != nullptr, "copy_base_weights: the source model has no ", d->name);
        require(s->rows == d->rows && s->cols == d->cols, "copy_base_weights: ", d->name, " is (", s->rows, ", ",
                s->cols, ") in the source but (", d->rows, ", ", d->cols, ") in the destination");
        auto const host = download<Backend>(ctx, *s);
        Backend::upload(ctx, host.data(), d->value, host.size());
    }
    for (auto const* s : src.parameters())
        require(is_lora_name(s->name) || dst.find(s->name) != nullptr, "copy_base_weights: ", s->name,
                " of the source model has no place in the destination model");
}

/// Fills `merged` (a model type without adapter) with `lora`'s base weights plus scale * B A for every adapted
/// projection, scale = alpha / r: the weights PEFT's merge_and_unload() produces.
template <class Backend, class T>
void merge_lora(typename Backend::Context& ctx, ParameterStore<Backend, T> const& lora,
                ParameterStore<Backend, T>& merged, double scale) {
    copy_base_weights(ctx, lora, merged);
    for (auto const* a : lora.parameters()) {
        if (!a->name.ends_with(lora_a_suffix)) continue;
        std::string const module = lora_module(a->name);
        auto const* b = lora.find(module + std::string(lora_b_suffix));
        auto* w = merged.find(module + ".weight");
        require(b != nullptr, "merge_lora: ", a->name, " has no lora_B partner");
        require(w != nullptr, "merge_lora: the merged model has no ", module, ".weight for ", a->name);
        require(b->cols == a->rows && w->rows == b->rows && w->cols == a->cols, "merge_lora: ", module, ": B (",
                b->rows, ", ", b->cols, ") A (", a->rows, ", ", a->cols, ") does not fit W (", w->rows, ", ", w->cols,
                ")");
        auto const host_a = download<Backend>(ctx, *a);
        auto const host_b = download<Backend>(ctx, *b);
        auto host_w = download<Backend>(ctx, *w);
        Eigen::Map<Matrix<T> const> const ma(host_a.data(), a->rows, a->cols);  // (r, in)
        Eigen::Map<Matrix<T> const> const mb(host_b.data(), b->rows, b->cols);  // (out, r)
        Eigen::Map<Matrix<T>> mw(host_w.data(), w->rows, w->cols);              // (out, in)
        mw.noalias() += (T(scale) * mb) * ma;
        Backend::upload(ctx, host_w.data(), w->value, host_w.size());
    }
}

/// merge_lora for two networks of the same architecture; the scale comes from LoraModel's adapter.
template <class LoraModel, class BaseModel, class Backend, class T>
void merge_lora(typename Backend::Context& ctx, CausalLm<LoraModel, Backend, T>& lora,
                CausalLm<BaseModel, Backend, T>& merged) {
    static_assert(LoraModel::adapter::is_lora, "merge_lora: the source model has no LoRA adapter");
    static_assert(!BaseModel::adapter::is_lora, "merge_lora: the merged model type must have no adapter");
    static_assert(std::is_same_v<typename LoraModel::config, typename BaseModel::config>,
                  "merge_lora: both model types must have the same size");
    merge_lora(ctx, lora.parameters(), merged.parameters(), LoraModel::adapter::scale);
}

/// Saves `net` (a LoRA network) as the HF checkpoint of its base model type with every adapter merged in,
/// W + (alpha / r) B A: what PEFT's merge_and_unload() followed by save_pretrained() writes, loadable with
/// AutoModelForCausalLM alone. The merge runs on host copies; `net` is left as it was.
template <class Model, class Backend, class T>
void save_merged_hf_checkpoint(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                               std::filesystem::path const& dir, DType dtype = DType::F32) {
    static_assert(Model::adapter::is_lora, "save_merged_hf_checkpoint: the model has no LoRA adapter to merge");
    auto const& store = net.parameters();
    std::vector<Parameter<T> const*> base;
    std::vector<std::vector<float>> values;
    values.reserve(store.parameters().size());
    for (auto const* p : store.parameters()) {
        if (is_lora_name(p->name)) continue;
        base.push_back(p);
        values.push_back(download_as_float<Backend>(ctx, *p));
    }
    for (auto const* a : store.parameters()) {
        if (!a->name.ends_with(lora_a_suffix)) continue;
        std::string const module = lora_module(a->name);
        auto const* b = store.find(module + std::string(lora_b_suffix));
        require(b != nullptr, "save_merged_hf_checkpoint: ", a->name, " has no lora_B partner");
        std::size_t w = 0;
        while (w < base.size() && base[w]->name != module + ".weight") ++w;
        require(w < base.size(), "save_merged_hf_checkpoint: the model has no ", module, ".weight for ", a->name);
        require(b->cols == a->rows && base[w]->rows == b->rows && base[w]->cols == a->cols, "save_merged_hf_checkpoint: ",
                module, ": B (", b->rows, ", ", b->cols, ") A (", a->rows, ", ", a->cols, ") does not fit W (",
                base[w]->rows, ", ", base[w]->cols, ")");
        auto const host_a = download_as_float<Backend>(ctx, *a);
        auto const host_b = download_as_float<Backend>(ctx, *b);
        Eigen::Map<Matrix<float> const> const ma(host_a.data(), a->rows, a->cols);  // (r, in)
        Eigen::Map<Matrix<float> const> const mb(host_b.data(), b->rows, b->cols);  // (out, r)
        Eigen::Map<Matrix<float>> mw(values[w].data(), base[w]->rows, base[w]->cols);  // (out, in)
        mw.noalias() += (float(Model::adapter::scale) * mb) * ma;
    }
    std::vector<TensorToWrite> tensors;
    for (std::size_t i = 0; i < base.size(); ++i) tensors.push_back({base[i]->name, dtype, hf_shape(*base[i]), values[i]});
    detail::write_hf_checkpoint(dir, tensors, hf_config_json<Model>(dtype), dtype);
}

}  // namespace polyalpaca::io
