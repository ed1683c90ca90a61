/// @file io/safetensors_file.hpp
/// @brief SafetensorsFile: one memory-mapped .safetensors file, header validated, tensors read by name.
#pragma once

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "polyalpaca/io/dtype.hpp"
#include "polyalpaca/io/mapped_file.hpp"
#include "polyalpaca/io/safetensors_header.hpp"

namespace polyalpaca::io {

namespace detail {

template <class Source>
Source load_unaligned(std::byte const* p) {
    Source v;
    std::memcpy(&v, p, sizeof(Source));
    return v;
}

/// Converts `out.size()` elements of float type `dtype` from `bytes` (any alignment) into `out`.
template <class T>
void convert_to(DType dtype, std::span<std::byte const> bytes, std::span<T> out) {
    std::byte const* p = bytes.data();
    std::size_t const n = out.size();
    switch (dtype) {
        case DType::F32:
            for (std::size_t i = 0; i < n; ++i) out[i] = T(load_unaligned<float>(p + 4 * i));
            break;
        case DType::F64:
            for (std::size_t i = 0; i < n; ++i) out[i] = T(load_unaligned<double>(p + 8 * i));
            break;
        case DType::F16:
            for (std::size_t i = 0; i < n; ++i) out[i] = T(half_to_float(load_unaligned<std::uint16_t>(p + 2 * i)));
            break;
        case DType::BF16:
            for (std::size_t i = 0; i < n; ++i) out[i] = T(bf16_to_float(load_unaligned<std::uint16_t>(p + 2 * i)));
            break;
        default:
            fail("dtype ", dtype_name(dtype), " is not a float type");
    }
}

}  // namespace detail

/// A .safetensors file mapped read-only. open() validates the whole header (see parse_safetensors_header),
/// so every TensorInfo it lists lies inside the file.
class SafetensorsFile {
public:
    static SafetensorsFile open(std::filesystem::path const& path) {
        SafetensorsFile f;
        f.map_ = MappedFile(path);
        f.header_ = parse_safetensors_header(f.map_.bytes(), path.string());
        for (std::size_t i = 0; i < f.header_.tensors.size(); ++i) f.index_.emplace(f.header_.tensors[i].name, i);
        return f;
    }

    std::filesystem::path const& path() const { return map_.path(); }
    /// Tensors sorted by name.
    std::vector<TensorInfo> const& tensors() const { return header_.tensors; }
    std::map<std::string, std::string> const& metadata() const { return header_.metadata; }

    /// nullptr when the file has no tensor `name`.
    TensorInfo const* find(std::string_view name) const {
        auto it = index_.find(name);
        return it == index_.end() ? nullptr : &header_.tensors[it->second];
    }

    /// The tensor's bytes as stored (little-endian, row-major).
    std::span<std::byte const> raw(std::string_view name) const { return raw(info(name)); }
    std::span<std::byte const> raw(TensorInfo const& t) const {
        return map_.bytes().subspan(header_.data_offset + t.begin, t.byte_size());
    }

    /// Converts an F32 / F16 / BF16 / F64 tensor into `out`, which must hold exactly its element count.
    template <class T>
    void read(std::string_view name, std::span<T> out) const {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "read() converts to float or double");
        auto const& t = info(name);
        require(is_float_dtype(t.dtype), where(t), "dtype ", dtype_name(t.dtype), " cannot be read as floating point");
        require(std::uint64_t(out.size()) == std::uint64_t(t.element_count()), where(t), "holds ", t.element_count(),
                " elements but the destination has ", out.size());
        detail::convert_to(t.dtype, raw(t), out);
    }

private:
    TensorInfo const& info(std::string_view name) const {
        auto const* t = find(name);
        if (!t) fail("safetensors file '", path().string(), "': no tensor ", detail::quoted(std::string(name)));
        return *t;
    }
    std::string where(TensorInfo const& t) const {
        return "safetensors file '" + path().string() + "': tensor " + detail::quoted(t.name) + ": ";
    }

    MappedFile map_;
    SafetensorsHeader header_;
    std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace polyalpaca::io
