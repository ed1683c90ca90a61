/// @file tokenizer/json_path.hpp
/// @brief Reading a parsed JSON document with errors that name the file and the JSON path ($.model.vocab...).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"

namespace polyalpaca::tokenizer {

/// A JSON value and where it is: the file and the path from the root.
class JsonAt {
public:
    JsonAt(nlohmann::json const& value, std::string path, std::string const& file)
        : value_(&value), path_(std::move(path)), file_(&file) {}

    nlohmann::json const& raw() const { return *value_; }
    std::string const& path() const { return path_; }

    template <class... Parts>
    [[noreturn]] void fail_here(Parts const&... parts) const {
        fail(*file_, ": ", path_, ": ", parts...);
    }

    bool is_null() const { return value_->is_null(); }
    bool is_string() const { return value_->is_string(); }
    bool is_array() const { return value_->is_array(); }
    bool is_object() const { return value_->is_object(); }

    /// Member `key`, which must exist (it may be null).
    JsonAt operator[](std::string_view key) const {
        require_object();
        auto it = value_->find(key);
        if (it == value_->end()) fail_here("missing member \"", key, "\"");
        return {*it, path_ + "." + std::string(key), *file_};
    }
    /// Member `key` when present and not null.
    std::optional<JsonAt> find(std::string_view key) const {
        require_object();
        auto it = value_->find(key);
        if (it == value_->end() || it->is_null()) return std::nullopt;
        return JsonAt{*it, path_ + "." + std::string(key), *file_};
    }
    bool has(std::string_view key) const { return find(key).has_value(); }

    std::size_t size() const {
        if (!value_->is_array()) fail_here("expected an array, found ", value_->type_name());
        return value_->size();
    }
    JsonAt operator[](std::size_t i) const {
        if (!value_->is_array()) fail_here("expected an array, found ", value_->type_name());
        return {(*value_)[i], path_ + "[" + std::to_string(i) + "]", *file_};
    }

    std::string const& string() const {
        if (!value_->is_string()) fail_here("expected a string, found ", value_->type_name());
        return value_->get_ref<std::string const&>();
    }
    bool boolean() const {
        if (!value_->is_boolean()) fail_here("expected true or false, found ", value_->type_name());
        return value_->get<bool>();
    }
    std::int64_t integer() const {
        if (!value_->is_number_integer()) fail_here("expected an integer, found ", value_->type_name());
        return value_->is_number_unsigned() && value_->get<std::uint64_t>() > std::uint64_t(INT64_MAX)
                   ? fail_int()
                   : value_->get<std::int64_t>();
    }
    double number() const {
        if (!value_->is_number()) fail_here("expected a number, found ", value_->type_name());
        return value_->get<double>();
    }
    /// An integer that fits a token id (0 <= id < 2^31).
    std::int32_t id() const {
        auto const v = integer();
        if (v < 0 || v > std::numeric_limits<std::int32_t>::max()) fail_here("token id ", v, " is out of range");
        return static_cast<std::int32_t>(v);
    }

    std::string string_or(std::string_view key, std::string fallback) const {
        auto v = find(key);
        return v ? v->string() : fallback;
    }
    bool boolean_or(std::string_view key, bool fallback) const {
        auto v = find(key);
        return v ? v->boolean() : fallback;
    }

private:
    void require_object() const {
        if (!value_->is_object()) fail_here("expected an object, found ", value_->type_name());
    }
    [[noreturn]] std::int64_t fail_int() const { fail_here("integer out of range"); }

    nlohmann::json const* value_;
    std::string path_;
    std::string const* file_;
};

/// Parses `text` as JSON; a syntax error names `file` and the byte offset, a number too large for a double `file`.
inline nlohmann::json parse_json(std::string_view text, std::string const& file) {
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (nlohmann::json::parse_error const& e) {
        fail(file, ": not valid JSON at byte offset ", e.byte, ": ", json_error_text(e.what()));
    } catch (nlohmann::json::exception const& e) {  // out_of_range.406: a number beyond double's range (1e999)
        fail(file, ": not valid JSON: ", json_error_text(e.what()));
    }
}

}  // namespace polyalpaca::tokenizer
