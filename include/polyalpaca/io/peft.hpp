/// @file io/peft.hpp
/// @brief PEFT LoRA adapters: adapter_model.safetensors + adapter_config.json as PEFT saves and loads them.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/lora_merge.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/io/safetensors.hpp"
#include "polyalpaca/models/causal_lm.hpp"

namespace polyalpaca::io {

/// What adapter_config.json records. target_modules empty: the leaf names of the adapted modules.
struct LoraSettings {
    int r = 0;
    double alpha = 0;
    double dropout = 0;
    std::vector<std::string> target_modules;
    std::string base_model;  ///< base_model_name_or_path, e.g. "bigscience/bloom-560m"

    /// r and alpha of Model's LoRA adapter.
    template <class Model>
    static LoraSettings of(std::string base_model = "", double dropout = 0) {
        static_assert(Model::adapter::is_lora, "LoraSettings::of needs a model type with a LoRA adapter");
        return {Model::adapter::rank, double(Model::adapter::alpha), dropout, {}, std::move(base_model)};
    }
};

/// PEFT's key prefix for a causal LM (PeftModelForCausalLM.base_model.model).
inline constexpr std::string_view peft_key_prefix = "base_model.model.";
inline constexpr char const* peft_weights_file = "adapter_model.safetensors";
inline constexpr char const* peft_config_file = "adapter_config.json";

/// adapter_config.json with every field PEFT 0.21 writes for a plain LoRA (peft_version left out: PEFT did not
/// write this file).
inline nlohmann::json peft_adapter_config(LoraSettings const& s) {
    nlohmann::json c;
    for (char const* null_field :
         {"alora_invocation_tokens", "arrow_config", "auto_mapping", "corda_config", "eva_config", "exclude_modules",
          "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform", "lora_ga_config",
          "megatron_config", "modules_to_save", "monteclora_config", "revision", "target_parameters",
          "trainable_token_indices", "use_bdlora", "velora_config"})
        c[null_field] = nullptr;
    c["alpha_pattern"] = nlohmann::json::object();
    c["rank_pattern"] = nlohmann::json::object();
    c["loftq_config"] = nlohmann::json::object();
    c["base_model_name_or_path"] = s.base_model.empty() ? nlohmann::json() : nlohmann::json(s.base_model);
    c["bias"] = "none";
    c["ensure_weight_tying"] = false;
    c["fan_in_fan_out"] = false;
    c["inference_mode"] = true;
    c["init_lora_weights"] = true;
    c["lora_alpha"] = s.alpha == std::floor(s.alpha) ? nlohmann::json(std::int64_t(s.alpha)) : nlohmann::json(s.alpha);
    c["lora_bias"] = false;
    c["lora_dropout"] = s.dropout;
    c["megatron_core"] = "megatron.core";
    c["peft_type"] = "LORA";
    c["qalora_group_size"] = 16;
    c["r"] = s.r;
    c["target_modules"] = s.target_modules;
    c["task_type"] = "CAUSAL_LM";
    c["use_dora"] = false;
    c["use_qalora"] = false;
    c["use_rslora"] = false;
    return c;
}

/// Writes `store`'s LoRA weights to `dir` as PEFT does: adapter_model.safetensors with keys
/// "base_model.model.<module>.lora_A.weight" and adapter_config.json; both atomically.
template <class Backend, class T>
void save_peft_adapter(typename Backend::Context& ctx, ParameterStore<Backend, T> const& store,
                       std::filesystem::path const& dir, LoraSettings settings, DType dtype = DType::F32) {
    std::string const where = "cannot save a PEFT adapter in '" + dir.string() + "': ";
    std::set<std::string> adapted_leaves, adapted_modules;
    std::vector<std::vector<float>> values;
    std::vector<TensorToWrite> tensors;
    for (auto const* p : store.parameters()) {
        if (!is_lora_name(p->name)) continue;
        bool const is_a = p->name.ends_with(lora_a_suffix);
        int const rank = int(is_a ? p->rows : p->cols);
        require(rank == settings.r, where, p->name, " has rank ", rank, " but the settings say r = ", settings.r);
        adapted_leaves.insert(module_leaf(lora_module(p->name)));
        adapted_modules.insert(lora_module(p->name));
        values.push_back(download_as_float<Backend>(ctx, *p));
        tensors.push_back({std::string(peft_key_prefix) + p->name, dtype, hf_shape(*p), {}});
    }
    require(!tensors.empty(), where, "the model has no LoRA weights");
    for (std::size_t i = 0; i < tensors.size(); ++i) tensors[i].values = values[i];
    require(settings.alpha > 0, where, "lora_alpha must be positive");
    if (settings.target_modules.empty()) settings.target_modules.assign(adapted_leaves.begin(), adapted_leaves.end());
    std::sort(settings.target_modules.begin(), settings.target_modules.end());
    std::set<std::string> const targets(settings.target_modules.begin(), settings.target_modules.end());
    for (auto const& leaf : adapted_leaves)
        require(targets.count(leaf), where, "target_modules lacks '", leaf, "', which the model adapts");
    for (auto const* p : store.parameters()) {  // PEFT would add fresh adapters to target modules we did not adapt
        if (!p->name.ends_with(".weight") || p->rows == 1 || is_lora_name(p->name)) continue;
        std::string const module = p->name.substr(0, p->name.size() - 7);
        require(!targets.count(module_leaf(module)) || adapted_modules.count(module), where, "target_modules names '",
                module_leaf(module), "', but ", module, " has no adapter");
    }
    std::filesystem::create_directories(dir);
    write_safetensors(dir / peft_weights_file, tensors, {{"format", "pt"}});
    write_file_atomically(dir / peft_config_file, peft_adapter_config(settings).dump(2) + "\n");
}

/// Reads a PEFT LoRA adapter from `dir` into `store`'s LoRA weights, after checking adapter_config.json (one
/// Error listing every mismatch) against the rank of the store's lora_A weights and, when given, the compiled
/// alpha (the CausalLm overload below passes it), then the keys and shapes of the weights.
template <class Backend, class T>
void load_peft_adapter(typename Backend::Context& ctx, ParameterStore<Backend, T>& store,
                       std::filesystem::path const& dir, std::optional<double> alpha = std::nullopt) {
    std::optional<Index> rank;
    for (auto const* p : store.parameters())
        if (p->name.ends_with(lora_a_suffix)) {
            if (rank && *rank != p->rows)
                fail("load_peft_adapter: the model's LoRA weights have ranks ", *rank, " and ", p->rows);
            rank = p->rows;
        }
    require(rank.has_value(), "cannot load the PEFT adapter in '", dir.string(), "': the model has no LoRA weights");
    auto const config_path = dir / peft_config_file;
    auto const config = read_json_file(config_path);
    require(config.is_object(), "'", config_path.string(), "' is not a JSON object");
    std::vector<std::string> wrong;
    auto expect = [&](char const* key, nlohmann::json const& want, nlohmann::json const& fallback) {
        auto it = config.find(key);
        nlohmann::json const found = it == config.end() || it->is_null() ? fallback : *it;
        bool const same =
            want.is_number() && found.is_number() ? want.get<double>() == found.get<double>() : want == found;
        if (!same) wrong.push_back(std::string(key) + ": expected " + want.dump() + ", found " + found.dump());
    };
    expect("peft_type", "LORA", nullptr);
    expect("r", *rank, nullptr);
    if (alpha) expect("lora_alpha", *alpha, nullptr);
    expect("bias", "none", "none");
    expect("fan_in_fan_out", false, false);
    expect("use_rslora", false, false);
    expect("use_dora", false, false);
    expect("lora_bias", false, false);
    expect("rank_pattern", nlohmann::json::object(), nlohmann::json::object());
    expect("alpha_pattern", nlohmann::json::object(), nlohmann::json::object());
    if (!wrong.empty()) {
        std::string message = "'" + config_path.string() + "' does not match the model's LoRA:";
        for (auto const& w : wrong) message += "\n  " + w;
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
        if (!is_lora_name(p->name)) continue;
        std::string const key = std::string(peft_key_prefix) + p->name;
        auto const* t = file.find(key);
        if (!t) {
            missing.push_back(key);
            continue;
        }
        used.insert(key);
        load_parameter<Backend>(ctx, *p, file, *t, where);
    }
    require(missing.empty(), where, "lacks ", missing.size(), " tensors the model's LoRA needs: ", name_list(missing));
    std::vector<std::string> unexpected;
    for (auto const& t : file.tensors())
        if (!used.count(t.name)) unexpected.push_back(t.name);
    require(unexpected.empty(), where, "holds ", unexpected.size(),
            " tensors the model has no place for: ", name_list(unexpected));
}

/// save_peft_adapter with r and alpha from Model's adapter.
template <class Model, class Backend, class T>
void save_peft_adapter(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                       std::filesystem::path const& dir, std::string base_model = "", double dropout = 0) {
    save_peft_adapter(ctx, net.parameters(), dir, LoraSettings::of<Model>(std::move(base_model), dropout));
}

/// load_peft_adapter checking against Model's compiled rank and alpha.
template <class Model, class Backend, class T>
void load_peft_adapter(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                       std::filesystem::path const& dir) {
    static_assert(Model::adapter::is_lora, "load_peft_adapter needs a model type with a LoRA adapter");
    load_peft_adapter(ctx, net.parameters(), dir, double(Model::adapter::alpha));
}

}  // namespace polyalpaca::io
