/// @file io/hf_config.hpp
/// @brief HF config.json for bloom, gpt_neox and llama: compare with a model type field by field, find the
///        matching preset, and write one that transformers loads.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/dtype.hpp"
#include "polyalpaca/io/model_spec.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"
#include "polyalpaca/io/safetensors_header.hpp"

namespace polyalpaca::io {

/// A value of an untrusted config.json in a message: a scalar as JSON (cut after 60 characters), a container by
/// its type and size only, since serialising it would recurse as deep as its nesting.
inline std::string config_value_text(nlohmann::json const& v) {
    if (v.is_structured()) return detail::describe(v);
    std::string const text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return text.size() > 60 ? text.substr(0, 60) + "..." : text;
}

/// One field of config.json next to the value a model type needs. `key` is the key read (the first of its
/// spellings the file has); an absent key takes transformers' default for that model_type.
struct ConfigField {
    std::string id;  ///< the ModelSpec member it sets ("" for fields that must hold a fixed value)
    std::string key;
    nlohmann::json expected;
    nlohmann::json found;
    bool present = false;

    bool matches() const {
        if (expected.is_number() && found.is_number()) {
            double const a = expected.get<double>(), b = found.get<double>();
            return std::abs(a - b) <= 1e-9 * std::max({1e-300, std::abs(a), std::abs(b)});
        }
        return expected == found;
    }
    std::string describe() const {
        return key + ": expected " + expected.dump() + ", found " + config_value_text(found) +
               (present ? "" : " (absent: transformers' default)");
    }
};

namespace detail {

/// The value at a dotted key ("rope_parameters.rope_theta"), or null.
inline nlohmann::json const* at_dotted(nlohmann::json const& config, std::string const& key) {
    nlohmann::json const* node = &config;
    std::size_t start = 0;
    while (true) {
        std::size_t const dot = key.find('.', start);
        std::string const part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!node->is_object()) return nullptr;
        auto it = node->find(part);
        if (it == node->end() || it->is_null()) return nullptr;
        node = &*it;
        if (dot == std::string::npos) return node;
        start = dot + 1;
    }
}

struct FieldBuilder {
    nlohmann::json const& config;
    std::vector<ConfigField> fields;

    /// Adds the field read from the first of `keys` present, else `fallback`.
    void add(std::string id, std::initializer_list<char const*> keys, nlohmann::json expected,
             nlohmann::json fallback) {
        ConfigField f{std::move(id), *keys.begin(), std::move(expected), std::move(fallback), false};
        for (char const* key : keys)
            if (auto const* v = at_dotted(config, key)) {
                f.key = key;
                f.found = *v;
                f.present = true;
                break;
            }
        fields.push_back(std::move(f));
    }
    nlohmann::json const& found(std::string const& id) const {
        for (auto const& f : fields)
            if (f.id == id) return f.found;
        fail("no config field ", id);
    }
};

}  // namespace detail

/// The fields of `config` (already known to be of model_type `spec.family`) that `spec` constrains.
inline std::vector<ConfigField> config_fields(ModelSpec const& s, nlohmann::json const& config) {
    detail::FieldBuilder b{config, {}};
    if (s.family == "bloom") {  // BloomConfig defaults
        b.add("vocab", {"vocab_size"}, s.vocab, 250880);
        b.add("hidden", {"hidden_size", "n_embed"}, s.hidden, 64);
        b.add("layers", {"n_layer", "num_hidden_layers"}, s.layers, 2);
        b.add("heads", {"n_head", "num_attention_heads"}, s.heads, 8);
        b.add("norm_eps", {"layer_norm_epsilon"}, s.norm_eps, 1e-5);
        b.add("tied_head", {"tie_word_embeddings"}, s.tied_head, true);
        b.add("", {"apply_residual_connection_post_layernorm"}, false, false);
    } else if (s.family == "gpt_neox") {  // GPTNeoXConfig defaults
        b.add("vocab", {"vocab_size"}, s.vocab, 50432);
        b.add("hidden", {"hidden_size"}, s.hidden, 6144);
        b.add("layers", {"num_hidden_layers"}, s.layers, 44);
        b.add("heads", {"num_attention_heads"}, s.heads, 64);
        b.add("ffn", {"intermediate_size"}, s.ffn, 24576);
        b.add("rotary_pct", {"rope_parameters.partial_rotary_factor", "partial_rotary_factor", "rotary_pct"},
              s.rotary_pct, 0.25);
        b.add("rope_theta", {"rope_parameters.rope_theta", "rope_theta", "rotary_emb_base"}, s.rope_theta, 10000.0);
        b.add("", {"rope_parameters.rope_type", "rope_scaling.rope_type", "rope_scaling.type"}, "default", "default");
        b.add("norm_eps", {"layer_norm_eps"}, s.norm_eps, 1e-5);
        b.add("", {"use_parallel_residual"}, true, true);
        b.add("tied_head", {"tie_word_embeddings"}, s.tied_head, false);
        b.add("", {"hidden_act"}, "gelu", "gelu");
        b.add("", {"attention_bias"}, true, true);
    } else if (s.family == "llama") {  // LlamaConfig defaults
        b.add("vocab", {"vocab_size"}, s.vocab, 32000);
        b.add("hidden", {"hidden_size"}, s.hidden, 4096);
        b.add("layers", {"num_hidden_layers"}, s.layers, 32);
        b.add("heads", {"num_attention_heads"}, s.heads, 32);
        b.add("kv_heads", {"num_key_value_heads"}, s.kv_heads, b.found("heads"));
        nlohmann::json const hidden = b.found("hidden"), heads = b.found("heads");
        nlohmann::json head_dim = nullptr;
        if (hidden.is_number_integer() && heads.is_number_integer() && heads.get<std::int64_t>() > 0)
            head_dim = hidden.get<std::int64_t>() / heads.get<std::int64_t>();
        b.add("", {"head_dim"}, s.heads > 0 ? s.hidden / s.heads : 0, head_dim);
        b.add("ffn", {"intermediate_size"}, s.ffn, 11008);
        b.add("norm_eps", {"rms_norm_eps"}, s.norm_eps, 1e-6);
        b.add("rope_theta", {"rope_parameters.rope_theta", "rope_theta"}, s.rope_theta, 10000.0);
        b.add("rotary_pct", {"rope_parameters.partial_rotary_factor", "partial_rotary_factor"}, s.rotary_pct, 1.0);
        b.add("", {"rope_parameters.rope_type", "rope_scaling.rope_type", "rope_scaling.type"}, "default", "default");
        b.add("tied_head", {"tie_word_embeddings"}, s.tied_head, false);
        b.add("", {"hidden_act"}, "silu", "silu");
        b.add("", {"attention_bias"}, false, false);
        b.add("", {"mlp_bias"}, false, false);
        // Every HF LLaMA checkpoint rotates halves; a Meta-layout (adjacent pairs) model type cannot load one.
        b.fields.push_back(
            {"", "rope layout", s.rope_rotate_half ? "rotate-half" : "adjacent pairs (Meta)", "rotate-half", true});
    } else {
        fail("no config fields for model family '", s.family, "'");
    }
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
    require(s.family == "bloom" || s.family == "gpt_neox" || s.family == "llama", "'", source, "': model_type \"",
            s.family, "\" is not one of bloom, gpt_neox, llama");
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
        else if (f.id == "tied_head") {
            require(f.found.is_boolean(), where(), ", not true or false");
            s.tied_head = f.found.get<bool>();
        }
    }
    if (s.family == "bloom") {
        s.kv_heads = s.heads;
        s.ffn = 4 * s.hidden;
    }
    if (s.family == "gpt_neox") s.kv_heads = s.heads;
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
    if (s.family == "bloom") {
        c["architectures"] = {"BloomForCausalLM"};
        c["n_layer"] = s.layers;
        c["n_head"] = s.heads;
        c["layer_norm_epsilon"] = s.norm_eps;
        c["apply_residual_connection_post_layernorm"] = false;
    } else {
        c["num_hidden_layers"] = s.layers;
        c["num_attention_heads"] = s.heads;
        c["intermediate_size"] = s.ffn;
        c["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", s.rope_theta}};
        c["rope_theta"] = s.rope_theta;
    }
    if (s.family == "gpt_neox") {
        c["architectures"] = {"GPTNeoXForCausalLM"};
        c["rope_parameters"]["partial_rotary_factor"] = s.rotary_pct;
        c["rotary_pct"] = s.rotary_pct;
        c["rotary_emb_base"] = s.rope_theta;
        c["layer_norm_eps"] = s.norm_eps;
        c["use_parallel_residual"] = true;
        c["hidden_act"] = "gelu";
        c["attention_bias"] = true;
    }
    if (s.family == "llama") {
        c["architectures"] = {"LlamaForCausalLM"};
        c["num_key_value_heads"] = s.kv_heads;
        c["head_dim"] = s.hidden / s.heads;
        c["rms_norm_eps"] = s.norm_eps;
        c["hidden_act"] = "silu";
        c["attention_bias"] = false;
        c["mlp_bias"] = false;
    }
    return c;
}

}  // namespace polyalpaca::io
