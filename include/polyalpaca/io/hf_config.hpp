/// @file io/hf_config.hpp
/// @brief HF config.json of any family models/families.hpp lists: compare with a model type field by field, read
///        the architecture it describes, find the matching preset, and write one that transformers loads. What
///        each key means is the family's (models/<family>.hpp, `Hf`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/dtype.hpp"
#include "polyalpaca/io/model_spec.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"
#include "polyalpaca/io/safetensors_header.hpp"
#include "polyalpaca/models/families.hpp"
#include "polyalpaca/models/hf_config_fields.hpp"

namespace polyalpaca::io {

using polyalpaca::config_value_text;
using polyalpaca::ConfigField;

/// The fields of `config` (already known to be of model_type `spec.family`) that `spec` constrains, as its family
/// maps them (models/<family>.hpp, `Hf::config_fields`).
inline std::vector<ConfigField> config_fields(ModelSpec const& s, nlohmann::json const& config) {
    HfConfigReader b{config, {}};
    require(with_hf_family(s.family, [&]<class Hf>() { Hf::config_fields(s, b); }),
            "no config fields for model family '", s.family, "'");
    return b.fields;
}

/// The lines "key: expected X, found Y" for every field of `config` that differs from `spec`.
inline std::vector<std::string> config_differences(ModelSpec const& spec, nlohmann::json const& config) {
    auto const type = config.is_object() ? config.find("model_type") : config.end();
    nlohmann::json const model_type = config.is_object() && type != config.end() ? *type : nlohmann::json();
    if (model_type != spec.family) return {"model_type: expected \"" + spec.family + "\", found " + config_value_text(model_type)};
    std::vector<std::string> out;
    for (auto const& f : config_fields(spec, config))
        if (!f.matches()) out.push_back(f.describe());
    return out;
}

/// Reads config.json (`path` is the file or the directory holding it); Error when absent or not a JSON object.
inline nlohmann::json read_hf_config(std::filesystem::path const& path) {
    auto const file = std::filesystem::is_directory(path) ? path / "config.json" : path;
    auto config = read_json_file(file);
    require(config.is_object(), "'", file.string(), "' is a ", config.type_name(), ", not a JSON object");
    return config;
}

/// Throws one Error naming `source` and listing every field of `config` that differs from Model's config.
template <class Model>
void check_config(nlohmann::json const& config, std::string const& source = "config.json") {
    auto const differences = config_differences(spec_of<Model>(), config);
    if (differences.empty()) return;
    std::string message = "'" + source + "' does not match the model type (" + std::to_string(differences.size()) +
                          " field" + (differences.size() > 1 ? "s" : "") + "):";
    for (auto const& d : differences) message += "\n  " + d;
    throw Error(message);
}
template <class Model>
void check_config(std::filesystem::path const& path) {
    auto const file = std::filesystem::is_directory(path) ? path / "config.json" : path;
    check_config<Model>(read_hf_config(file), file.string());
}

/// The architecture `config` describes (absent fields at transformers' defaults). Error for another model_type.
inline ModelSpec spec_from_config(nlohmann::json const& config, std::string const& source = "config.json") {
    require(config.is_object(), "'", source, "' is not a JSON object");
    auto const type = config.find("model_type");
    require(type != config.end() && type->is_string(), "'", source, "' has no string \"model_type\"");
    ModelSpec s;
    s.family = type->get<std::string>();
    require(with_hf_family(s.family, [] <class Hf>() {}), "'", source, "': model_type \"", excerpt(s.family),
            "\" is not one of ", hf_family_names());
    s.rope_rotate_half = true;
    s.kv_heads = s.heads;
    for (auto const& f : config_fields(s, config)) {
        auto const where = [&] { return "'" + source + "': \"" + f.key + "\" is " + config_value_text(f.found); };
        auto integer = [&] {
            require(f.found.is_number_integer() && f.found.get<std::int64_t>() >= 0, where(), ", not a count");
            // Far above any published checkpoint, and low enough that parameter_count cannot overflow.
            std::int64_t const most = f.id == "layers" ? 4096 : std::int64_t(1) << 22;
            require(f.found.get<std::int64_t>() <= most, where(), ", more than any model here takes (", most, ")");
            return f.found.get<std::int64_t>();
        };
        auto number = [&] {
            require(f.found.is_number(), where(), ", not a number");
            return f.found.get<double>();
        };
        if (f.id == "vocab")
            s.vocab = integer();
        else if (f.id == "hidden")
            s.hidden = integer();
        else if (f.id == "layers")
            s.layers = integer();
        else if (f.id == "heads")
            s.heads = integer();
        else if (f.id == "kv_heads")
            s.kv_heads = integer();
        else if (f.id == "ffn")
            s.ffn = integer();
        else if (f.id == "rotary_pct")
            s.rotary_pct = number();
        else if (f.id == "rope_theta")
            s.rope_theta = number();
        else if (f.id == "norm_eps")
            s.norm_eps = number();
        else if (f.id == "tied_head" || f.id == "parallel_residual") {
            require(f.found.is_boolean(), where(), ", not true or false");
            (f.id == "tied_head" ? s.tied_head : s.parallel_residual) = f.found.get<bool>();
        }
    }
    with_hf_family(s.family, [&]<class Hf>() { Hf::complete(s); });
    s.parameter_count = parameter_count(s);
    return s;
}

/// A preset and what `config` says differently (empty when it matches).
struct PresetMatch {
    std::string name;
    std::vector<std::string> differences;
};

/// The preset of the same model_type with the fewest differing fields (name empty when there is none).
inline PresetMatch nearest_preset(nlohmann::json const& config) {
    PresetMatch best;
    for (auto const& p : presets()) {
        if (!config.is_object() || config.value("model_type", nlohmann::json()) != p.spec.family) continue;
        auto differences = config_differences(p.spec, config);
        if (best.name.empty() || differences.size() < best.differences.size()) best = {p.name, std::move(differences)};
    }
    return best;
}

/// The names of the presets `config` matches exactly, joined with " = " (several presets share values), or "".
inline std::string matching_preset(nlohmann::json const& config) {
    std::string names;
    for (auto const& p : presets())
        if (config.is_object() && config.value("model_type", nlohmann::json()) == p.spec.family &&
            config_differences(p.spec, config).empty())
            names += (names.empty() ? "" : " = ") + p.name;
    return names;
}

/// A config.json for Model that transformers loads (written in transformers 5's form, with the legacy rotary
/// keys older versions read as well).
template <class Model>
nlohmann::json hf_config_json(DType dtype = DType::F32) {
    auto const s = spec_of<Model>();
    nlohmann::json c;
    c["model_type"] = s.family;
    c["vocab_size"] = s.vocab;
    c["hidden_size"] = s.hidden;
    c["tie_word_embeddings"] = s.tied_head;
    c["torch_dtype"] = std::string(torch_dtype_name(dtype));
    c["dtype"] = c["torch_dtype"];
    c["max_position_embeddings"] = Model::config::max_positions;
    require(with_hf_family(s.family, [&]<class Hf>() {
                c["architectures"] = {Hf::architecture};
                Hf::write_config(s, c);
            }),
            "no HF config.json for model family '", s.family, "'");
    return c;
}

}  // namespace polyalpaca::io
