/// @file io/adapter_merge.hpp
/// @brief Merging an adapted model into plain base weights, as the adapter policy's merge says (LoRA: W + s B A;
///        DoRA: the magnitude times the normalised W + s B A; IA3: W scaled): into a network without adapter, or
///        saved as an HF checkpoint.
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/hf_weights.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/models/causal_lm.hpp"

namespace polyalpaca::io {

/// `store`'s adapter tensors (adapter policy A's names) grouped by module, in store order; host values when
/// `with_values`, shapes only otherwise.
template <class A, class Backend, class T>
std::vector<AdaptedModule<T>> adapted_modules(typename Backend::Context& ctx, ParameterStore<Backend, T> const& store,
                                              bool with_values) {
    std::vector<AdaptedModule<T>> modules;
    std::map<std::string, std::size_t> index;
    for (auto const* p : store.parameters()) {
        if (!p->of_adapter()) continue;
        std::string const module = adapter_module(p->name, A::tensor_suffixes);
        require(!module.empty(), p->name, " is not a tensor name of the ", A::name, " adapter");
        auto [it, fresh] = index.emplace(module, modules.size());
        if (fresh) modules.push_back({module, {}});
        modules[it->second].tensors.push_back({p->name.substr(module.size()), p->rows, p->cols,
                                               with_values ? download<Backend>(ctx, *p) : std::vector<T>{}});
    }
    return modules;
}

/// Host copies of `adapted`'s base weights (every parameter but the adapter's, in store order), each adapted
/// module's weight and bias merged by policy A: the weights PEFT's merge_and_unload() produces.
template <class A, class Backend, class T>
std::vector<std::pair<Parameter<T> const*, std::vector<T>>> merged_base_weights(
    typename Backend::Context& ctx, ParameterStore<Backend, T> const& adapted) {
    static_assert(has_adapter_weights<A>, "merged_base_weights: the model has no adapter to merge");
    std::vector<std::pair<Parameter<T> const*, std::vector<T>>> weights;
    for (auto const* p : adapted.parameters())
        if (!p->of_adapter()) weights.emplace_back(p, download<Backend>(ctx, *p));
    auto host_of = [&](std::string const& name) -> std::pair<Parameter<T> const*, std::vector<T>>* {
        for (auto& w : weights)
            if (w.first->name == name) return &w;
        return nullptr;
    };
    for (auto const& module : adapted_modules<A>(ctx, adapted, true)) {
        auto* w = host_of(module.module + ".weight");
        require(w != nullptr, "merge: the model has no ", module.module, ".weight for its adapter");
        auto* b = host_of(module.module + ".bias");
        Eigen::Map<Matrix<T>> mw(w->second.data(), w->first->rows, w->first->cols);  // (out, in)
        A::merge(module, mw, b != nullptr ? b->second.data() : static_cast<T*>(nullptr));
    }
    return weights;
}

/// Fills `merged` (a model type without adapter) with merged_base_weights of `adapted`, parameter by name. A weight
/// of either model that the other lacks, or of another shape, is an Error.
template <class A, class Backend, class T>
void merge_adapter(typename Backend::Context& ctx, ParameterStore<Backend, T> const& adapted,
                   ParameterStore<Backend, T>& merged) {
    for (auto const* d : merged.parameters())
        require(adapted.find(d->name) != nullptr, "merge: the source model has no ", d->name);
    for (auto const& [s, values] : merged_base_weights<A>(ctx, adapted)) {
        auto* d = merged.find(s->name);
        require(d != nullptr, "merge: ", s->name, " of the source model has no place in the destination model");
        require(s->rows == d->rows && s->cols == d->cols, "merge: ", d->name, " is (", s->rows, ", ", s->cols,
                ") in the source but (", d->rows, ", ", d->cols, ") in the destination");
        Backend::upload(ctx, values.data(), d->value, values.size());
    }
}

/// merge_adapter for two networks of the same architecture, the first adapted, the second without adapter.
template <class AdaptedModel, class BaseModel, class Backend, class T>
void merge_adapter(typename Backend::Context& ctx, CausalLm<AdaptedModel, Backend, T>& adapted,
                   CausalLm<BaseModel, Backend, T>& merged) {
    static_assert(has_adapter_weights<typename AdaptedModel::adapter>,
                  "merge_adapter: the source model has no adapter");
    static_assert(!has_adapter_weights<typename BaseModel::adapter>,
                  "merge_adapter: the merged model type must have no adapter");
    static_assert(std::is_same_v<typename AdaptedModel::config, typename BaseModel::config>,
                  "merge_adapter: both model types must have the same size");
    merge_adapter<typename AdaptedModel::adapter>(ctx, adapted.parameters(), merged.parameters());
}

/// Saves `net` (an adapted network) as the HF checkpoint of its base model type with its adapter merged in: what
/// PEFT's merge_and_unload() followed by save_pretrained() writes, loadable with AutoModelForCausalLM alone. The
/// merge runs on host copies; `net` is left as it was.
template <class Model, class Backend, class T>
void save_merged_hf_checkpoint(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                               std::filesystem::path const& dir, DType dtype = DType::F32) {
    static_assert(has_adapter_weights<typename Model::adapter>,
                  "save_merged_hf_checkpoint: the model has no adapter to merge");
    auto const weights = merged_base_weights<typename Model::adapter>(ctx, net.parameters());
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
