/// @file io/dtype.hpp
/// @brief Element types as safetensors names them, and exact fp16 / bf16 <-> float conversions.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace polyalpaca::io {

static_assert(std::endian::native == std::endian::little, "polyalpaca's file formats assume a little-endian host");

/// The byte-sized element types of the safetensors format (sub-byte F4 / F6 types are not supported).
enum class DType { Bool, U8, I8, F8E5M2, F8E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

namespace detail {
struct DTypeEntry {
    DType dtype;
    std::string_view name;
    std::size_t size;
};
inline constexpr std::array<DTypeEntry, 15> dtype_table{{
    {DType::Bool, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::F8E5M2, "F8_E5M2", 1},
    {DType::F8E4M3, "F8_E4M3", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
}};
}  // namespace detail

/// Bytes per element.
constexpr std::size_t size_of(DType t) {
    for (auto const& e : detail::dtype_table)
        if (e.dtype == t) return e.size;
    return 0;
}

/// The safetensors spelling: "F32", "BF16", "F8_E4M3", ...
constexpr std::string_view dtype_name(DType t) {
    for (auto const& e : detail::dtype_table)
        if (e.dtype == t) return e.name;
    return "?";
}

/// The DType named `name` (case-sensitive, as safetensors writes it), or nullopt.
constexpr std::optional<DType> parse_dtype(std::string_view name) {
    for (auto const& e : detail::dtype_table)
        if (e.name == name) return e.dtype;
    return std::nullopt;
}

/// True for the types read() converts to float / double.
constexpr bool is_float_dtype(DType t) {
    return t == DType::F16 || t == DType::BF16 || t == DType::F32 || t == DType::F64;
}

/// The torch spelling of a float dtype, as config.json's "torch_dtype" holds it.
constexpr std::string_view torch_dtype_name(DType t) {
    switch (t) {
        case DType::F16:
            return "float16";
        case DType::BF16:
            return "bfloat16";
        case DType::F32:
            return "float32";
        case DType::F64:
            return "float64";
        default:
            return "?";
    }
}

/// IEEE binary16 -> float, exact (every half is a float).
inline float half_to_float(std::uint16_t h) {
    std::uint32_t const sign = std::uint32_t(h & 0x8000u) << 16;
    std::uint32_t const exponent = (h >> 10) & 0x1fu;
    std::uint32_t const mantissa = h & 0x3ffu;
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
        float const magnitude = std::ldexp(float(mantissa), -24);
        return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
    }
    if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/// float -> IEEE binary16 with round-to-nearest-even (torch's .half()): overflow to inf, underflow to
/// subnormals or signed zero, NaN to the signed quiet NaN 0x7e00.
inline std::uint16_t float_to_half(float f) {
    std::uint32_t const x = std::bit_cast<std::uint32_t>(f);
    std::uint32_t const sign = (x >> 16) & 0x8000u;
    std::uint32_t const magnitude = x & 0x7fffffffu;
    std::uint32_t const exponent = magnitude >> 23;
    if (magnitude > 0x7f800000u) return std::uint16_t(sign | 0x7e00u);  // NaN, as torch makes it
    if (exponent > 142) return std::uint16_t(sign | 0x7c00u);           // >= 2^16, or inf
    auto round_shift = [](std::uint32_t v, unsigned shift) {            // v >> shift, rounded to nearest even
        std::uint32_t const kept = v >> shift;
        std::uint32_t const rest = v & ((1u << shift) - 1u);
        std::uint32_t const halfway = 1u << (shift - 1);
        return kept + ((rest > halfway || (rest == halfway && (kept & 1u))) ? 1u : 0u);
    };
    if (exponent < 113) {                                // below 2^-14: a half subnormal, mantissa * 2^-24
        if (exponent < 102) return std::uint16_t(sign);  // below 2^-25 rounds to zero
        std::uint32_t const significand = (magnitude & 0x7fffffu) | 0x800000u;
        return std::uint16_t(sign | round_shift(significand, 126 - exponent));  // may carry into the smallest normal
    }
    // Normal: rebias the exponent; a carry out of the mantissa correctly bumps the exponent (up to inf).
    return std::uint16_t(sign | round_shift(magnitude - (112u << 23), 13));
}

/// bfloat16 -> float, exact.
inline float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

/// float -> bfloat16 with round-to-nearest-even (torch's .bfloat16()); every NaN becomes 0x7fc0, as in torch.
inline std::uint16_t float_to_bf16(float f) {
    std::uint32_t const x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace polyalpaca::io
