/// @file io/peft.hpp
/// @brief PEFT adapters as PEFT saves and loads them: adapter_model.safetensors + adapter_config.json, for whichever
///        adapter policy the model has (LoRA, DoRA, IA3); the policy describes its own config and tensors.
#pragma once

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/io/adapter_merge.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/io/safetensors.hpp"
#include "polyalpaca/models/causal_lm.hpp"

namespace polyalpaca::io {

/// PEFT's key prefix for a causal LM (PeftModelForCausalLM.base_model.model).
inline constexpr std::string_view peft_key_prefix = "base_model.model.";
inline constexpr char const* peft_weights_file = "adapter_model.safetensors";
inline constexpr char const* peft_config_file = "adapter_config.json";

/// Writes `store`'s adapter weights (policy A's) to `dir` as PEFT does: adapter_model.safetensors with keys
/// "base_model.model.<module><suffix>" and adapter_config.json as A describes it; both atomically.
template <class A, class Backend, class T>
void save_peft_adapter(typename Backend::Context& ctx, ParameterStore<Backend, T> const& store,
                       std::filesystem::path const& dir, PeftSettings settings, DType dtype = DType::F32) {
    static_assert(has_adapter_weights<A>, "save_peft_adapter needs a model type with an adapter");
    std::string const where = "cannot save a PEFT adapter in '" + dir.string() + "': ";
    auto const modules = adapted_modules<A>(ctx, store, false);
    require(!modules.empty(), where, "the model has no ", A::name, " weights");
    std::set<std::string> adapted_leaves, adapted;
    for (auto const& m : modules) {
        adapted_leaves.insert(module_leaf(m.module));
        adapted.insert(m.module);
    }
    std::vector<std::vector<float>> values;
    std::vector<TensorToWrite> tensors;
    for (auto const* p : store.parameters()) {
        if (!p->of_adapter()) continue;
        values.push_back(download_as_float<Backend>(ctx, *p));
        tensors.push_back({std::string(peft_key_prefix) + p->name, dtype, hf_shape(*p), {}});
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) tensors[i].values = values[i];
    if (settings.target_modules.empty()) settings.target_modules.assign(adapted_leaves.begin(), adapted_leaves.end());
    std::sort(settings.target_modules.begin(), settings.target_modules.end());
    std::set<std::string> const targets(settings.target_modules.begin(), settings.target_modules.end());
    for (auto const& leaf : adapted_leaves)
        require(targets.count(leaf), where, "target_modules lacks '", leaf, "', which the model adapts");
    for (auto const* p : store.parameters()) {  // PEFT would add fresh adapters to target modules we did not adapt
        if (!p->name.ends_with(".weight") || p->rows == 1 || p->of_adapter()) continue;
        std::string const module = p->name.substr(0, p->name.size() - 7);
        require(!targets.count(module_leaf(module)) || adapted.count(module), where, "target_modules names '",
                module_leaf(module), "', but ", module, " has no adapter");
    }
    std::filesystem::create_directories(dir);
    write_safetensors(dir / peft_weights_file, tensors, {{"format", "pt"}});
    write_file_atomically(dir / peft_config_file, A::peft_config(settings, modules).dump(2) + "\n");
}

/// Reads a PEFT adapter from `dir` into `store`'s adapter weights (policy A's), after checking adapter_config.json
/// against what A compiled (one Error listing every mismatch), then the keys and shapes of the weights.
template <class A, class Backend, class T>
void load_peft_adapter(typename Backend::Context& ctx, ParameterStore<Backend, T>& store,
                       std::filesystem::path const& dir) {
    static_assert(has_adapter_weights<A>, "load_peft_adapter needs a model type with an adapter");
    auto const modules = adapted_modules<A>(ctx, store, false);
    require(!modules.empty(), "cannot load the PEFT adapter in '", dir.string(), "': the model has no ", A::name,
            " weights");
    auto const config_path = dir / peft_config_file;
    auto const config = read_json_file(config_path);
    require(config.is_object(), "'", config_path.string(), "' is not a JSON object");
    PeftConfigCheck check(config);
    A::check_peft_config(check, modules);
    if (!check.mismatches().empty()) {
        std::string message = "'" + config_path.string() + "' does not match the model's " + std::string(A::name) + ":";
        for (auto const& w : check.mismatches()) message += "\n  " + w;
        throw Error(message);
    }

    auto const weights_path = dir / peft_weights_file;
    require(std::filesystem::exists(weights_path) || !std::filesystem::exists(dir / "adapter_model.bin"), "'",
            dir.string(),
            "' holds adapter_model.bin (a pickle), which polyalpaca does not read: save it as "
            "safetensors");
    auto const file = SafetensorsFile::open(weights_path);
    std::string const where = "PEFT adapter '" + weights_path.string() + "': ";
    std::set<std::string> used;
    std::vector<std::string> missing;
    for (auto* p : store.parameters()) {
        if (!p->of_adapter()) continue;
        std::string const key = std::string(peft_key_prefix) + p->name;
        auto const* t = file.find(key);
        if (!t) {
            missing.push_back(key);
            continue;
        }
        used.insert(key);
        load_parameter<Backend>(ctx, *p, file, *t, where);
    }
    require(missing.empty(), where, "lacks ", missing.size(), " tensors the model's ", A::name,
            " needs: ", name_list(missing));
    std::vector<std::string> unexpected;
    for (auto const& t : file.tensors())
        if (!used.count(t.name)) unexpected.push_back(t.name);
    require(unexpected.empty(), where, "holds ", unexpected.size(),
            " tensors the model has no place for: ", name_list(unexpected));
}

/// save_peft_adapter of `net`'s adapter.
template <class Model, class Backend, class T>
void save_peft_adapter(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                       std::filesystem::path const& dir, std::string base_model = "", double dropout = 0) {
    save_peft_adapter<typename Model::adapter>(ctx, net.parameters(), dir,
                                               PeftSettings{dropout, {}, std::move(base_model)});
}

/// load_peft_adapter checking against Model's compiled adapter.
template <class Model, class Backend, class T>
void load_peft_adapter(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                       std::filesystem::path const& dir) {
    load_peft_adapter<typename Model::adapter>(ctx, net.parameters(), dir);
}

}  // namespace polyalpaca::io
