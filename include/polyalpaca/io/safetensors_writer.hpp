/// @file io/safetensors_writer.hpp
/// @brief write_safetensors: float tensors to a .safetensors file laid out byte for byte as the Python library does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/dtype.hpp"

namespace polyalpaca::io {

/// One tensor to write: float values converted to `dtype` (F32, F16 or BF16) on the way out.
struct TensorToWrite {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::span<float const> values;
};

namespace detail {

/// Converts `values` to `dtype` and appends them to `file`, a chunk at a time.
inline void write_converted(AtomicFile& file, DType dtype, std::span<float const> values) {
    if (dtype == DType::F32) {
        file.write(std::as_bytes(values));
        return;
    }
    std::vector<std::uint16_t> chunk;
    constexpr std::size_t chunk_elements = 1 << 16;
    for (std::size_t at = 0; at < values.size(); at += chunk_elements) {
        std::size_t const n = std::min(chunk_elements, values.size() - at);
        chunk.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            chunk[i] = dtype == DType::F16 ? float_to_half(values[at + i]) : float_to_bf16(values[at + i]);
        file.write(std::as_bytes(std::span<std::uint16_t const>(chunk)));
    }
}

inline std::string json_string(std::string const& s, std::string const& path) {
    try {
        return nlohmann::json(s).dump();
    } catch (nlohmann::json::exception const&) {
        fail("cannot write '", path, "': a name or metadata string is not valid UTF-8");
    }
}

}  // namespace detail

/// Writes `tensors` and `metadata` to `path` atomically. The layout matches safetensors' own serializer:
/// tensors ordered by dtype (wider first: F32, BF16, F16) then name, packed from offset 0; compact JSON with
/// "__metadata__" first and its keys sorted; header padded with spaces to a multiple of 8 bytes.
inline void write_safetensors(std::filesystem::path const& path, std::vector<TensorToWrite> const& tensors,
                              std::map<std::string, std::string> const& metadata = {}) {
    std::string const where = "cannot write '" + path.string() + "': ";
    std::set<std::string> names;
    for (auto const& t : tensors) {
        require(t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16, where, "tensor '", t.name,
                "': dtype ", dtype_name(t.dtype), " is not one of F32, F16, BF16");
        require(t.name != "__metadata__", where, "a tensor cannot be named \"__metadata__\"");
        require(names.insert(t.name).second, where, "tensor '", t.name, "' given twice");
        std::int64_t elements = 1;
        for (auto d : t.shape) {
            require(d >= 0, where, "tensor '", t.name, "' has a negative dimension");
            elements *= d;
        }
        require(std::uint64_t(elements) == t.values.size(), where, "tensor '", t.name, "': shape holds ", elements,
                " elements but ", t.values.size(), " values were given");
    }
    std::vector<TensorToWrite const*> order;
    for (auto const& t : tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](auto* a, auto* b) { return a->dtype != b->dtype ? a->dtype > b->dtype : a->name < b->name; });

    std::string header = "{";
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (auto const& [key, value] : metadata) {
            header += (first ? "" : ",") + detail::json_string(key, path) + ":" + detail::json_string(value, path);
            first = false;
        }
        header += "}";
    }
    std::uint64_t offset = 0;
    for (auto const* t : order) {
        if (header.size() > 1) header += ",";
        std::uint64_t const bytes = t->values.size() * size_of(t->dtype);
        header += detail::json_string(t->name, path) + ":{\"dtype\":\"" + std::string(dtype_name(t->dtype)) +
                  "\",\"shape\":" + nlohmann::json(t->shape).dump() + ",\"data_offsets\":[" + std::to_string(offset) +
                  "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');

    AtomicFile file(path);
    std::uint64_t const header_size = header.size();
    file.write(std::as_bytes(std::span<std::uint64_t const>(&header_size, 1)));
    file.write(header);
    for (auto const* t : order) detail::write_converted(file, t->dtype, t->values);
    file.commit();
}

}  // namespace polyalpaca::io
