/// @file io/lora_merge.hpp
/// @brief Merging a LoRA model into plain base weights, W + (alpha / r) B A: into a network without adapter, or
///        saved as an HF checkpoint.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/hf_weights.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/models/causal_lm.hpp"

namespace polyalpaca::io {

/// Host copies of `lora`'s base weights (every parameter but the LoRA ones, in store order), each adapted
/// projection with scale * B A added, scale = alpha / r: the weights PEFT's merge_and_unload() produces.
template <class Backend, class T>
std::vector<std::pair<Parameter<T> const*, std::vector<T>>> merged_base_weights(typename Backend::Context& ctx,
                                                                                ParameterStore<Backend, T> const& lora,
                                                                                double scale) {
    std::vector<std::pair<Parameter<T> const*, std::vector<T>>> weights;
    for (auto const* p : lora.parameters())
        if (!is_lora_name(p->name)) weights.emplace_back(p, download<Backend>(ctx, *p));
    for (auto const* a : lora.parameters()) {
        if (!a->name.ends_with(lora_a_suffix)) continue;
        std::string const module = lora_module(a->name);
        auto const* b = lora.find(module + std::string(lora_b_suffix));
        require(b != nullptr, "merge_lora: ", a->name, " has no lora_B partner");
        auto w = weights.begin();
        while (w != weights.end() && w->first->name != module + ".weight") ++w;
        require(w != weights.end(), "merge_lora: the model has no ", module, ".weight for ", a->name);
        auto const& wp = *w->first;
        require(b->cols == a->rows && wp.rows == b->rows && wp.cols == a->cols, "merge_lora: ", module, ": B (", b->rows,
                ", ", b->cols, ") A (", a->rows, ", ", a->cols, ") does not fit W (", wp.rows, ", ", wp.cols, ")");
        auto const host_a = download<Backend>(ctx, *a);
        auto const host_b = download<Backend>(ctx, *b);
        Eigen::Map<Matrix<T> const> const ma(host_a.data(), a->rows, a->cols);  // (r, in)
        Eigen::Map<Matrix<T> const> const mb(host_b.data(), b->rows, b->cols);  // (out, r)
        Eigen::Map<Matrix<T>> mw(w->second.data(), wp.rows, wp.cols);          // (out, in)
        mw.noalias() += (T(scale) * mb) * ma;
    }
    return weights;
}

/// Fills `merged` (a model type without adapter) with merged_base_weights of `lora`, parameter by name. A weight of
/// either model that the other lacks, or of another shape, is an Error.
template <class Backend, class T>
void merge_lora(typename Backend::Context& ctx, ParameterStore<Backend, T> const& lora,
                ParameterStore<Backend, T>& merged, double scale) {
    for (auto const* d : merged.parameters())
        require(lora.find(d->name) != nullptr, "merge_lora: the source model has no ", d->name);
    for (auto const& [s, values] : merged_base_weights<Backend>(ctx, lora, scale)) {
        auto* d = merged.find(s->name);
        require(d != nullptr, "merge_lora: ", s->name, " of the source model has no place in the destination model");
        require(s->rows == d->rows && s->cols == d->cols, "merge_lora: ", d->name, " is (", s->rows, ", ", s->cols,
                ") in the source but (", d->rows, ", ", d->cols, ") in the destination");
        Backend::upload(ctx, values.data(), d->value, values.size());
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
    auto const weights = merged_base_weights<Backend>(ctx, net.parameters(), Model::adapter::scale);
    std::vector<std::vector<float>> as_float;  // T = double only: the writer takes float values
    as_float.reserve(weights.size());
    std::vector<TensorToWrite> tensors;
    for (auto const& [p, host] : weights) {
        if constexpr (std::is_same_v<T, float>) {
            tensors.push_back({p->name, dtype, hf_shape(*p), host});
        } else {
            as_float.emplace_back(host.begin(), host.end());
            tensors.push_back({p->name, dtype, hf_shape(*p), as_float.back()});
        }
    }
    detail::write_hf_checkpoint(dir, tensors, hf_config_json<Model>(dtype), dtype);
}

}  // namespace polyalpaca::io
