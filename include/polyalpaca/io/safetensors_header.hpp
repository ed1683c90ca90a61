/// @file io/safetensors_header.hpp
/// @brief Parses and validates the untrusted JSON header of a safetensors file before any tensor is read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/dtype.hpp"

namespace polyalpaca::io {

/// One tensor of a safetensors file; begin / end are byte offsets into the data section (after the header).
struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;

    std::int64_t element_count() const {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
    std::uint64_t byte_size() const { return end - begin; }
};

/// What a valid header says: tensors sorted by name, the "__metadata__" map, where the data section starts.
struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;
    std::map<std::string, std::string> metadata;
    std::uint64_t data_offset = 0;  ///< 8 + header size
    std::uint64_t data_size = 0;    ///< bytes after the header
};

/// The safetensors library's own cap on the header size.
inline constexpr std::uint64_t max_safetensors_header_bytes = 100'000'000;

namespace detail {

/// A name from an untrusted file, JSON-quoted (control characters escaped) and cut to a readable length.
inline std::string quoted(std::string const& name) {
    std::string const cut = name.size() > 160 ? name.substr(0, 160) : name;
    std::string q = nlohmann::json(cut).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return name.size() > 160 ? q + "..." : q;
}

/// "number 3", "string \"x\"", "array of 2 elements": never serialises a container (its nesting is untrusted).
inline std::string describe(nlohmann::json const& v) {
    if (v.is_structured()) return std::string(v.type_name()) + " of " + std::to_string(v.size()) + " elements";
    std::string const text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return std::string(v.type_name()) + " " + (text.size() > 60 ? text.substr(0, 60) + "..." : text);
}

/// "[2, 3]" for a shape already checked to hold integers, cut after 8 dimensions.
inline std::string shape_text(nlohmann::json const& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size() && i < 8; ++i) out += (i ? ", " : "") + shape[i].dump();
    return out + (shape.size() > 8 ? ", ...]" : "]");
}

inline std::uint64_t read_u64_le(std::byte const* p) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    return v;
}

/// Reads one tensor entry; `where` is the message prefix naming the file and the tensor.
inline TensorInfo parse_tensor_entry(std::string const& name, nlohmann::json const& entry, std::uint64_t data_size,
                                     std::string const& where) {
    require(entry.is_object(), where, "entry is a ", describe(entry), ", not an object");
    for (auto const& [key, value] : entry.items())
        require(key == "dtype" || key == "shape" || key == "data_offsets", where, "unknown field ", quoted(key));
    auto const dtype_it = entry.find("dtype");
    auto const shape_it = entry.find("shape");
    auto const offsets_it = entry.find("data_offsets");
    require(dtype_it != entry.end(), where, "has no \"dtype\"");
    require(shape_it != entry.end(), where, "has no \"shape\"");
    require(offsets_it != entry.end(), where, "has no \"data_offsets\"");
    require(dtype_it->is_string(), where, "\"dtype\" is a ", describe(*dtype_it), ", not a string");
    auto const dtype = parse_dtype(dtype_it->get_ref<std::string const&>());
    require(dtype.has_value(), where, "unknown or unsupported dtype ", quoted(dtype_it->get<std::string>()));

    TensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    require(shape_it->is_array(), where, "\"shape\" is a ", describe(*shape_it), ", not an array");
    std::uint64_t elements = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < shape_it->size(); ++i) {
        auto const& d = (*shape_it)[i];
        require(d.is_number_integer(), where, "shape dimension ", i, " is a ", describe(d), ", not an integer");
        require(d.is_number_unsigned(), where, "shape dimension ", i, " is negative (", d.get<std::int64_t>(), ")");
        auto const dim = d.get<std::uint64_t>();
        require(dim <= std::uint64_t(std::numeric_limits<std::int64_t>::max()), where, "shape dimension ", i, " (", dim,
                ") is too large");
        overflow = overflow || __builtin_mul_overflow(elements, dim, &elements);
        info.shape.push_back(std::int64_t(dim));
    }
    std::uint64_t bytes = 0;
    overflow = overflow || __builtin_mul_overflow(elements, std::uint64_t(size_of(info.dtype)), &bytes) ||
               elements > std::uint64_t(std::numeric_limits<std::int64_t>::max());
    require(!overflow, where, "shape ", shape_text(*shape_it), " overflows the element count");

    auto const& offsets = *offsets_it;
    require(offsets.is_array() && offsets.size() == 2, where, "\"data_offsets\" is a ", describe(offsets),
            ", not [begin, end]");
    for (auto const& o : offsets)
        require(o.is_number_unsigned(), where, "\"data_offsets\" hold a ", describe(o), ", not a non-negative integer");
    info.begin = offsets[0].get<std::uint64_t>();
    info.end = offsets[1].get<std::uint64_t>();
    require(info.begin <= info.end, where, "data_offsets [", info.begin, ", ", info.end, "] have begin after end");
    require(info.end <= data_size, where, "data_offsets [", info.begin, ", ", info.end,
            "] run past the end of the data section (", data_size, " bytes)");
    require(info.end - info.begin == bytes, where, "data_offsets [", info.begin, ", ", info.end, "] hold ",
            info.end - info.begin, " bytes but ", dtype_it->get<std::string>(), " shape ", shape_text(*shape_it),
            " needs ", bytes);
    return info;
}

}  // namespace detail

/// Validates the whole header of the safetensors bytes `file` (named `source` in messages): the 8-byte
/// little-endian size, the JSON object, every tensor entry, the metadata, and that no two tensors overlap.
inline SafetensorsHeader parse_safetensors_header(std::span<std::byte const> file, std::string const& source) {
    std::string const where = "safetensors file '" + source + "': ";
    require(file.size() >= 8, where, "is ", file.size(), " bytes, too short for the 8-byte header size");
    std::uint64_t const header_size = detail::read_u64_le(file.data());
    require(header_size <= max_safetensors_header_bytes, where, "header size ", header_size, " exceeds the limit of ",
            max_safetensors_header_bytes, " bytes");
    require(header_size <= file.size() - 8, where, "header size ", header_size, " runs past the end of the file (",
            file.size(), " bytes)");

    auto const* text = reinterpret_cast<char const*>(file.data() + 8);
    require(header_size >= 2 && text[0] == '{', where, "header does not start with a JSON object '{'");
    // Record keys repeated at the top level (nlohmann would keep the last one silently).
    int depth = 0;
    std::set<std::string> seen;
    std::string duplicate;
    auto on_event = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start || event == E::array_start) ++depth;
        if (event == E::object_end || event == E::array_end) --depth;
        if (event == E::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
            duplicate = parsed.get<std::string>();
        return true;
    };
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(text, text + header_size, on_event);
    } catch (nlohmann::json::exception const& e) {
        fail(where, "header is not valid JSON: ", json_error_text(e.what()));
    }
    require(header.is_object(), where, "header is a ", header.type_name(), ", not a JSON object");  // e.g. "{}x"
    require(duplicate.empty(), where, "header names ", detail::quoted(duplicate), " twice");

    SafetensorsHeader result;
    result.data_offset = 8 + header_size;
    result.data_size = file.size() - result.data_offset;
    for (auto const& [key, value] : header.items()) {
        if (key == "__metadata__") {
            require(value.is_object(), where, "\"__metadata__\" is a ", value.type_name(), ", not an object");
            for (auto const& [mkey, mvalue] : value.items()) {
                require(mvalue.is_string(), where, "\"__metadata__\" value of ", detail::quoted(mkey), " is a ",
                        detail::describe(mvalue), ", not a string");
                result.metadata[mkey] = mvalue.get<std::string>();
            }
            continue;
        }
        std::string const tensor_where = where + "tensor " + detail::quoted(key) + ": ";
        result.tensors.push_back(detail::parse_tensor_entry(key, value, result.data_size, tensor_where));
    }

    std::vector<TensorInfo const*> by_offset;
    for (auto const& t : result.tensors)
        if (t.end > t.begin) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
        auto const& a = *by_offset[i - 1];
        auto const& b = *by_offset[i];
        require(a.end <= b.begin, where, "tensor ", detail::quoted(a.name), " [", a.begin, ", ", a.end,
                ") overlaps tensor ", detail::quoted(b.name), " [", b.begin, ", ", b.end, ")");
    }
    return result;
}

}  // namespace polyalpaca::io
