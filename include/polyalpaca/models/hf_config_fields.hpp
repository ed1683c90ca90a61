/// @file models/hf_config_fields.hpp
/// @brief What a family's HF config.json mapping is written with: ConfigField (a key of config.json next to the
///        value a model type needs) and the reader that collects them (HfConfigReader).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// A value of an untrusted config.json in a message: a scalar as JSON (cut after 60 characters), a container by
/// its type and size only, since serialising it would recurse as deep as its nesting.
inline std::string config_value_text(nlohmann::json const& v) {
    if (v.is_structured()) return std::string(v.type_name()) + " of " + std::to_string(v.size()) + " elements";
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

/// The value at a dotted key of a config ("rope_parameters.rope_theta"), or null.
inline nlohmann::json const* config_at(nlohmann::json const& config, std::string const& key) {
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

/// Collects the fields of one config.json a family's mapping names (models/<family>.hpp, `Hf::config_fields`).
struct HfConfigReader {
    nlohmann::json const& config;
    std::vector<ConfigField> fields;

    /// Adds the field read from the first of `keys` present, else `fallback` (transformers' default).
    void add(std::string id, std::initializer_list<char const*> keys, nlohmann::json expected,
             nlohmann::json fallback) {
        ConfigField f{std::move(id), *keys.begin(), std::move(expected), std::move(fallback), false};
        for (char const* key : keys)
            if (auto const* v = config_at(config, key)) {
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

/// A double as C++ source: the shortest text that reads back to the same value ("1e-06", "10000.0").
inline std::string cpp_double(double v) {
    char text[32];
    auto const end = std::to_chars(text, text + sizeof text, v).ptr;
    std::string s(text, end);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

}  // namespace polyalpaca
