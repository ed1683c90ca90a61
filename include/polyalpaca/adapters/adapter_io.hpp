/// @file adapters/adapter_io.hpp
/// @brief What an adapter policy is handed by io/ to describe itself to PEFT and to merge: the run's PEFT settings,
///        a checker for adapter_config.json, and one adapted module's tensors as host copies.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// What adapter_config.json records beyond the adapter type's compiled settings.
struct PeftSettings {
    double dropout = 0;                       ///< lora_dropout (LoRA, DoRA)
    std::vector<std::string> target_modules;  ///< module leaf names; empty: the leaves of the adapted modules
    std::string base_model;                   ///< base_model_name_or_path, e.g. "bigscience/bloom-560m"
};

/// One adapter tensor of a module: its suffix (".lora_A.weight"), shape and values (host copies).
template <class T>
struct AdapterTensor {
    std::string suffix;
    Index rows = 0;
    Index cols = 0;
    std::vector<T> values;
};

/// An adapted module ("model.layers.0.self_attn.q_proj") and its adapter tensors.
template <class T>
struct AdaptedModule {
    std::string module;
    std::vector<AdapterTensor<T>> tensors;

    AdapterTensor<T> const& tensor(std::string_view suffix) const {
        auto it = std::find_if(tensors.begin(), tensors.end(), [&](auto const& t) { return t.suffix == suffix; });
        require(it != tensors.end(), module, " has no adapter tensor ", module, suffix);
        return *it;
    }
};

/// Compares adapter_config.json's keys with what the model's adapter needs and collects one line per mismatch
/// ("r: expected 2, found 4"). A missing or null key counts as `fallback`; numbers compare by value.
class PeftConfigCheck {
public:
    explicit PeftConfigCheck(nlohmann::json const& config) : config_(config) {}

    void expect(char const* key, nlohmann::json const& want, nlohmann::json const& fallback) {
        auto it = config_.find(key);
        nlohmann::json const found = it == config_.end() || it->is_null() ? fallback : *it;
        bool const same =
            want.is_number() && found.is_number() ? want.get<double>() == found.get<double>() : want == found;
        if (!same) wrong_.push_back(std::string(key) + ": expected " + want.dump() + ", found " + found.dump());
    }
    /// The key's value as a sorted list of strings (a string alone counts as a list of one; missing: empty).
    std::vector<std::string> string_list(char const* key) const {
        std::vector<std::string> out;
        auto it = config_.find(key);
        if (it == config_.end() || it->is_null()) return out;
        if (it->is_string()) return {it->get<std::string>()};
        if (it->is_array())
            for (auto const& v : *it)
                if (v.is_string()) out.push_back(v.get<std::string>());
        std::sort(out.begin(), out.end());
        return out;
    }
    void add_mismatch(std::string line) { wrong_.push_back(std::move(line)); }
    std::vector<std::string> const& mismatches() const { return wrong_; }

private:
    nlohmann::json const& config_;
    std::vector<std::string> wrong_;
};

/// The fields PEFT 0.21 writes for every adapter type (peft_version left out: PEFT did not write the file).
inline nlohmann::json peft_common_config(PeftSettings const& s, char const* peft_type) {
    nlohmann::json c;
    for (char const* null_field : {"auto_mapping", "exclude_modules", "modules_to_save", "revision"})
        c[null_field] = nullptr;
    c["base_model_name_or_path"] = s.base_model.empty() ? nlohmann::json() : nlohmann::json(s.base_model);
    c["fan_in_fan_out"] = false;
    c["inference_mode"] = true;
    c["peft_type"] = peft_type;
    c["target_modules"] = s.target_modules;
    c["task_type"] = "CAUSAL_LM";
    return c;
}

}  // namespace polyalpaca
