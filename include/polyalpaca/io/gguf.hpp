/// @file io/gguf.hpp
/// @brief A validating reader of GGUF v2/v3 files (llama.cpp): typed metadata, tensor directory, F32/F16/BF16/Q8_0
///        reads.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/dtype.hpp"
#include "polyalpaca/io/mapped_file.hpp"

namespace polyalpaca::io {

/// Metadata value types; the numbers are the file's type codes.
enum class GgufType : std::uint32_t { U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };

constexpr std::string_view gguf_type_name(GgufType t) {
    constexpr std::array<std::string_view, 13> names{"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                     "bool", "string", "array", "u64", "i64", "f64"};
    auto const i = std::size_t(t);
    return i < names.size() ? names[i] : std::string_view("unknown");
}

/// Tensor element types of ggml (the file's type codes; gaps are codes ggml has retired).
enum class GgmlType : std::uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
};

/// A ggml type's storage: `block_bytes` bytes hold `block_size` consecutive elements of dimension 0 (sizes as
/// ggml's C structs have them; gguf-py 0.19.0 agrees except for Q8_1, which ggml stores in 36 bytes, not 40).
struct GgmlTypeTraits {
    GgmlType type;
    std::string_view name;
    std::uint32_t block_size;
    std::uint32_t block_bytes;
};

namespace detail {
inline constexpr std::array<GgmlTypeTraits, 34> ggml_type_table{{
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},
    {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},
    {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},
    {GgmlType::Q8_1, "Q8_1", 32, 36},
    {GgmlType::Q2_K, "Q2_K", 256, 84},
    {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},
    {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},
    {GgmlType::Q8_K, "Q8_K", 256, 292},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66},
    {GgmlType::IQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98},
    {GgmlType::IQ1_S, "IQ1_S", 256, 50},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18},
    {GgmlType::IQ3_S, "IQ3_S", 256, 110},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82},
    {GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::I8, "I8", 1, 1},
    {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},
    {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},
    {GgmlType::IQ1_M, "IQ1_M", 256, 56},
    {GgmlType::BF16, "BF16", 1, 2},
    {GgmlType::TQ1_0, "TQ1_0", 256, 54},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66},
    {GgmlType::MXFP4, "MXFP4", 32, 17},
    {GgmlType::NVFP4, "NVFP4", 64, 36},
    {GgmlType::Q1_0, "Q1_0", 128, 18},
}};
}  // namespace detail

/// The traits of type code `code`, or nullptr when ggml has no such type.
constexpr GgmlTypeTraits const* ggml_type_traits(std::uint32_t code) {
    for (auto const& t : detail::ggml_type_table)
        if (std::uint32_t(t.type) == code) return &t;
    return nullptr;
}

constexpr std::string_view ggml_type_name(GgmlType t) {
    auto const* traits = ggml_type_traits(std::uint32_t(t));
    return traits ? traits->name : std::string_view("unknown");
}

/// The elements of a metadata array; the alternative's index is the element type's code (nested arrays are refused,
/// so the Array slot stays unused).
using GgufArrayElements = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::uint16_t>,
                                       std::vector<std::int16_t>, std::vector<std::uint32_t>, std::vector<std::int32_t>,
                                       std::vector<float>, std::vector<bool>, std::vector<std::string>, std::monostate,
                                       std::vector<std::uint64_t>, std::vector<std::int64_t>, std::vector<double>>;

struct GgufArray {
    GgufArrayElements elements;
    GgufType element_type() const { return GgufType(elements.index()); }
    std::size_t size() const {
        return std::visit(
            [](auto const& v) -> std::size_t {
                if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>)
                    return 0;
                else
                    return v.size();
            },
            elements);
    }
};

/// One metadata value; the alternative's index is the value type's code.
struct GgufValue {
    std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t, float, bool,
                 std::string, GgufArray, std::uint64_t, std::int64_t, double>
        data;
    GgufType type() const { return GgufType(data.index()); }
};

/// One tensor of the directory. dims are ggml's [ne0, ne1, ...], fastest-varying first: a PyTorch (out, in)
/// weight has dims [in, out].
struct GgufTensorInfo {
    std::string name;
    GgmlType type;
    std::vector<std::int64_t> dims;
    std::int64_t elements = 0;
    std::uint64_t bytes = 0;
    std::uint64_t offset = 0;       ///< from the start of the data section
    std::uint64_t file_offset = 0;  ///< from the start of the file
    std::uint64_t info_offset = 0;  ///< where the file describes this tensor (for messages)
};

/// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : std::int32_t { Undefined = 0, Normal, Unknown, Control, UserDefined, Unused, Byte };

/// The tokenizer a GGUF file carries (tokenizer.ggml.*).
struct GgufVocabulary {
    std::string model;  ///< "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    std::string pre;    ///< pre-tokenizer name, e.g. "gpt-2", "falcon"; empty when absent
    std::vector<std::string> tokens;
    std::vector<float> scores;              ///< empty when the file has none (BPE vocabularies)
    std::vector<std::int32_t> token_types;  ///< GgufTokenType codes; empty when absent
    std::vector<std::string> merges;        ///< "a b" pairs, by priority; empty for SentencePiece
    std::int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  ///< -1: not set in the file
    bool add_bos = false;  ///< the file's add_bos_token; when absent, true for "llama" as in llama.cpp
    bool add_eos = false;
};

/// A GGUF file, validated on open: magic, version (2 or 3), every count and length against the bytes that remain,
/// value and tensor types, dims and their products, general.alignment, and every tensor's data inside the file,
/// aligned, and not overlapping another. Errors name the file, the offset and the reason.
class GgufFile {
public:
    static constexpr std::uint32_t default_alignment = 32;

    explicit GgufFile(std::filesystem::path path);

    std::filesystem::path const& path() const { return file_.path(); }
    std::uint32_t version() const { return version_; }
    std::uint32_t alignment() const { return alignment_; }
    std::uint64_t data_offset() const { return data_offset_; }

    std::map<std::string, GgufValue, std::less<>> const& metadata() const { return metadata_; }
    GgufValue const* find(std::string_view key) const {
        auto it = metadata_.find(key);
        return it == metadata_.end() ? nullptr : &it->second;
    }
    bool contains(std::string_view key) const { return find(key) != nullptr; }

    /// The value of `key` held as exactly V (std::string, float, std::uint32_t, ...).
    template <class V>
    V const& get(std::string_view key) const;
    /// Any integer-typed value of `key`, as int64 (a u64 above INT64_MAX is an error).
    std::int64_t get_integer(std::string_view key) const;
    /// Any f32/f64 or integer-typed value of `key`, as double.
    double get_number(std::string_view key) const;
    std::string const& get_string(std::string_view key) const { return get<std::string>(key); }
    bool get_bool(std::string_view key) const { return get<bool>(key); }
    /// The elements of array `key`, which must have element type E.
    template <class E>
    std::vector<E> const& get_array(std::string_view key) const;

    std::vector<GgufTensorInfo> const& tensors() const { return tensors_; }
    GgufTensorInfo const* find_tensor(std::string_view name) const;
    GgufTensorInfo const& tensor(std::string_view name) const;
    /// The stored bytes of tensor `name` (in the mapped file).
    std::span<std::byte const> tensor_bytes(std::string_view name) const;
    /// Converts tensor `name` (F32, F16, BF16, or Q8_0 dequantized) into `out`, which must hold exactly its elements,
    /// in file order.
    template <class T>
    void read_tensor(std::string_view name, std::span<T> out) const;

    /// tokenizer.ggml.*, checked: sizes of scores / token types equal the token count, special ids in range.
    GgufVocabulary vocabulary() const;

private:
    template <class... Parts>
    [[noreturn]] void fail_here(Parts const&... parts) const {
        fail(file_.path().string(), ": ", parts...);
    }
    GgufValue const& value_of(std::string_view key) const;

    MappedFile file_;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = default_alignment;
    std::uint64_t data_offset_ = 0;
    std::map<std::string, GgufValue, std::less<>> metadata_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace polyalpaca::io

#include "polyalpaca/io/gguf_impl.hpp"
