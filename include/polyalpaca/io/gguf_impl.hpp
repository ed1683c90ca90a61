/// @file io/gguf_impl.hpp
/// @brief GgufFile's parser and accessors (included by io/gguf.hpp).
#pragma once

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "polyalpaca/io/gguf.hpp"

namespace polyalpaca::io {

namespace detail {

/// Reads little-endian fields from the mapped bytes; every read is checked against the bytes that remain.
class GgufCursor {
public:
    GgufCursor(std::span<std::byte const> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

    std::uint64_t offset() const { return offset_; }
    std::uint64_t remaining() const { return bytes_.size() - offset_; }

    template <class... Parts>
    [[noreturn]] void fail_at(std::uint64_t offset, Parts const&... parts) const {
        fail(file_, ": at offset ", offset, ": ", parts...);
    }

    template <class V>
    V scalar(std::string_view what) {
        static_assert(std::is_trivially_copyable_v<V>);
        if (remaining() < sizeof(V))
            fail_at(offset_, "truncated: ", what, " needs ", sizeof(V), " bytes but only ", remaining(), " remain");
        V v;
        std::memcpy(&v, bytes_.data() + offset_, sizeof(V));
        offset_ += sizeof(V);
        return v;
    }

    bool boolean(std::string_view what) {
        auto const at = offset_;
        auto const b = scalar<std::uint8_t>(what);
        if (b > 1) fail_at(at, what, " is a bool but holds the byte ", int(b), " (expected 0 or 1)");
        return b == 1;
    }

    std::string string(std::string_view what) {
        auto const at = offset_;
        auto const length = scalar<std::uint64_t>(what);
        if (length > remaining())
            fail_at(at, what, ": string length ", length, " exceeds the ", remaining(), " bytes left in the file");
        std::string s(reinterpret_cast<char const*>(bytes_.data() + offset_), std::size_t(length));
        offset_ += length;
        return s;
    }

private:
    std::span<std::byte const> bytes_;
    std::string file_;
    std::uint64_t offset_ = 0;
};

/// The fewest bytes one value of type `t` takes (a string: its 8-byte length).
constexpr std::uint64_t gguf_min_value_bytes(GgufType t) {
    switch (t) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::Bool:
            return 1;
        case GgufType::U16:
        case GgufType::I16:
            return 2;
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::F32:
            return 4;
        case GgufType::U64:
        case GgufType::I64:
        case GgufType::F64:
        case GgufType::String:
            return 8;
        case GgufType::Array:
            return 12;
    }
    return 1;
}

inline GgufType gguf_value_type(GgufCursor& in, std::string const& key, bool element) {
    auto const at = in.offset();
    auto const code = in.scalar<std::uint32_t>(element ? "array element type" : "value type");
    if (code > std::uint32_t(GgufType::F64))
        in.fail_at(at, "key '", printable_excerpt(key), "' has unknown ", element ? "array element type " : "value type ", code);
    auto const t = GgufType(code);
    if (element && t == GgufType::Array)
        in.fail_at(at, "key '", printable_excerpt(key), "' is an array of arrays, which is not supported");
    return t;
}

template <std::size_t I, class Variant>
void read_gguf_scalar_into(GgufCursor& in, Variant& out, std::string const& what) {
    using V = std::variant_alternative_t<I, Variant>;
    if constexpr (std::is_same_v<V, bool>)
        out.template emplace<I>(in.boolean(what));
    else if constexpr (std::is_same_v<V, std::string>)
        out.template emplace<I>(in.string(what));
    else if constexpr (std::is_arithmetic_v<V>)
        out.template emplace<I>(in.scalar<V>(what));
}

template <std::size_t I>
void read_gguf_array_elements(GgufCursor& in, GgufArrayElements& out, std::uint64_t count, std::string const& key) {
    using Vec = std::variant_alternative_t<I, GgufArrayElements>;
    if constexpr (!std::is_same_v<Vec, std::monostate>) {
        using E = typename Vec::value_type;
        auto& v = out.template emplace<I>();
        v.reserve(std::size_t(count));
        std::string const what = "an element of array '" + key + "'";
        for (std::uint64_t i = 0; i < count; ++i) {
            if constexpr (std::is_same_v<E, bool>)
                v.push_back(in.boolean(what));
            else if constexpr (std::is_same_v<E, std::string>)
                v.push_back(in.string(what));
            else
                v.push_back(in.scalar<E>(what));
        }
    }
}

template <std::size_t... I>
void read_gguf_value(GgufCursor& in, GgufValue& out, GgufType t, std::string const& key, std::index_sequence<I...>) {
    if (t != GgufType::Array) {
        std::string const what = "the value of key '" + key + "'";
        ((std::size_t(t) == I ? read_gguf_scalar_into<I>(in, out.data, what) : void()), ...);
        return;
    }
    auto const element_type = gguf_value_type(in, key, true);
    auto const at = in.offset();
    auto const count = in.scalar<std::uint64_t>("array length");
    auto const min_bytes = gguf_min_value_bytes(element_type);
    if (count > in.remaining() / min_bytes)
        in.fail_at(at, "array '", printable_excerpt(key), "' claims ", count, " elements of type ", gguf_type_name(element_type),
                   " (at least ", min_bytes, " bytes each) but only ", in.remaining(), " bytes remain");
    GgufArray array;
    ((std::size_t(element_type) == I ? read_gguf_array_elements<I>(in, array.elements, count, key) : void()), ...);
    out.data.emplace<GgufArray>(std::move(array));
}

/// The bytes as a C-like string literal: printable ASCII as is, others as \xNN.
inline std::string quoted_bytes(std::span<unsigned char const> bytes) {
    std::string s = "\"";
    for (unsigned char c : bytes) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            s += char(c);
        } else {
            constexpr char hex[] = "0123456789abcdef";
            s += "\\x";
            s += hex[c >> 4];
            s += hex[c & 15];
        }
    }
    return s + "\"";
}

/// The index of V among the alternatives of a variant.
template <class V, class... Ts>
constexpr std::size_t index_in(std::variant<Ts...> const*) {
    constexpr bool same[] = {std::is_same_v<V, Ts>...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i)
        if (same[i]) return i;
    return sizeof...(Ts);
}

inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    return !__builtin_mul_overflow(a, b, &out);
}
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    return !__builtin_add_overflow(a, b, &out);
}

}  // namespace detail

inline GgufFile::GgufFile(std::filesystem::path path) : file_(std::move(path)) {
    detail::GgufCursor in(file_.bytes(), file_.path().string());
    auto const magic = in.scalar<std::array<unsigned char, 4>>("magic");
    if (magic != std::array<unsigned char, 4>{'G', 'G', 'U', 'F'})
        in.fail_at(0, "not a GGUF file: bad magic ", detail::quoted_bytes(magic), " (expected \"GGUF\")");
    version_ = in.scalar<std::uint32_t>("version");
    if (version_ != 2 && version_ != 3) {
        auto const swapped = __builtin_bswap32(version_);
        if (swapped == 2 || swapped == 3) in.fail_at(4, "big-endian GGUF (version ", swapped, ") is not supported");
        in.fail_at(4, "unsupported GGUF version ", version_, " (only versions 2 and 3 are read)");
    }
    auto const tensor_count = in.scalar<std::uint64_t>("tensor count");
    auto const kv_count = in.scalar<std::uint64_t>("metadata count");
    // The smallest tensor description: name length, n_dims, one dim, type, offset; a key-value: key length, type, 1
    // byte.
    constexpr std::uint64_t min_tensor_info = 8 + 4 + 8 + 4 + 8, min_kv = 8 + 4 + 1;
    if (tensor_count > in.remaining() / min_tensor_info)
        in.fail_at(8, "tensor count ", tensor_count, " cannot fit in the ", in.remaining(), " bytes after the header");
    if (kv_count > in.remaining() / min_kv)
        in.fail_at(16, "metadata count ", kv_count, " cannot fit in the ", in.remaining(), " bytes after the header");

    for (std::uint64_t i = 0; i < kv_count; ++i) {
        auto const at = in.offset();
        std::string key = in.string("metadata key");
        if (metadata_.contains(key)) in.fail_at(at, "duplicate metadata key '", printable_excerpt(key), "'");
        auto const type = detail::gguf_value_type(in, key, false);
        GgufValue value;
        detail::read_gguf_value(in, value, type, key, std::make_index_sequence<13>{});
        metadata_.emplace(std::move(key), std::move(value));
    }
    if (auto const* a = find("general.alignment")) {
        if (a->type() != GgufType::U32)
            fail_here("general.alignment has type ", gguf_type_name(a->type()), ", expected u32");
        alignment_ = std::get<std::uint32_t>(a->data);
        if (!std::has_single_bit(alignment_))
            fail_here("general.alignment is ", alignment_, ", which is not a power of two");
    }

    tensors_.reserve(std::size_t(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
        GgufTensorInfo t;
        t.info_offset = in.offset();
        t.name = in.string("tensor name");
        if (t.name.empty()) in.fail_at(t.info_offset, "tensor ", i, " has an empty name");
        if (tensor_index_.contains(t.name)) in.fail_at(t.info_offset, "duplicate tensor name '", printable_excerpt(t.name), "'");
        auto const dims_at = in.offset();
        auto const n_dims = in.scalar<std::uint32_t>("tensor dimension count");
        if (n_dims < 1 || n_dims > 4)
            in.fail_at(dims_at, "tensor '", printable_excerpt(t.name), "' has ", n_dims, " dimensions (expected 1 to 4)");
        std::uint64_t elements = 1;
        for (std::uint32_t d = 0; d < n_dims; ++d) {
            auto const dim = in.scalar<std::uint64_t>("tensor dimension");
            if (dim > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ||
                !detail::checked_mul(elements, dim, elements) ||
                elements > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
                in.fail_at(dims_at, "tensor '", printable_excerpt(t.name), "': the element count overflows at dimension ", d, " (", dim,
                           ")");
            t.dims.push_back(std::int64_t(dim));
        }
        t.elements = std::int64_t(elements);
        auto const type_at = in.offset();
        auto const code = in.scalar<std::uint32_t>("tensor type");
        auto const* traits = ggml_type_traits(code);
        if (!traits) in.fail_at(type_at, "tensor '", printable_excerpt(t.name), "' has unknown ggml type ", code);
        t.type = traits->type;
        if (t.dims[0] % traits->block_size != 0)
            in.fail_at(dims_at, "tensor '", printable_excerpt(t.name), "': dimension 0 (", t.dims[0], ") is not a multiple of the ",
                       traits->name, " block size ", traits->block_size);
        if (!detail::checked_mul(elements / traits->block_size, traits->block_bytes, t.bytes))
            in.fail_at(dims_at, "tensor '", printable_excerpt(t.name), "': its byte size overflows");
        auto const offset_at = in.offset();
        t.offset = in.scalar<std::uint64_t>("tensor data offset");
        if (t.offset % alignment_ != 0)
            in.fail_at(offset_at, "tensor '", printable_excerpt(t.name), "' has data offset ", t.offset,
                       ", not a multiple of the alignment ", alignment_);
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment after the tensor directory.
    data_offset_ = (in.offset() + alignment_ - 1) / alignment_ * alignment_;
    if (!tensors_.empty() && data_offset_ > file_.size())
        fail_here("the data section would start at offset ", data_offset_, ", past the end of the file (", file_.size(),
                  " bytes)");
    std::vector<GgufTensorInfo const*> by_offset;
    for (auto& t : tensors_) {
        std::uint64_t end = 0;
        if (!detail::checked_add(data_offset_, t.offset, t.file_offset) ||
            !detail::checked_add(t.file_offset, t.bytes, end) || end > file_.size())
            fail_here("tensor '", printable_excerpt(t.name), "' (described at offset ", t.info_offset, "): its ", t.bytes,
                      " bytes at data offset ", t.offset, " end past the end of the file (", file_.size(), " bytes)");
        by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
            fail_here("tensor '", printable_excerpt(by_offset[i]->name), "' (data offset ", by_offset[i]->offset, ") overlaps tensor '",
                      printable_excerpt(by_offset[i - 1]->name), "' (data offset ", by_offset[i - 1]->offset, ", ",
                      by_offset[i - 1]->bytes, " bytes)");
}

inline GgufValue const& GgufFile::value_of(std::string_view key) const {
    auto const* v = find(key);
    if (!v) fail_here("metadata key '", key, "' is missing");
    return *v;
}

template <class V>
V const& GgufFile::get(std::string_view key) const {
    auto const& v = value_of(key);
    auto const* p = std::get_if<V>(&v.data);
    if (!p) {
        constexpr auto expected = detail::index_in<V>(static_cast<decltype(GgufValue::data) const*>(nullptr));
        fail_here("metadata key '", key, "' has type ", gguf_type_name(v.type()), ", expected ",
                  gguf_type_name(GgufType(expected)));
    }
    return *p;
}

inline std::int64_t GgufFile::get_integer(std::string_view key) const {
    auto const& v = value_of(key);
    return std::visit(
        [&](auto const& x) -> std::int64_t {
            using V = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {
                if constexpr (std::is_same_v<V, std::uint64_t>)
                    if (x > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
                        fail_here("metadata key '", key, "' holds ", x, ", which is too large");
                return std::int64_t(x);
            } else {
                fail_here("metadata key '", key, "' has type ", gguf_type_name(v.type()), ", expected an integer");
            }
        },
        v.data);
}

inline double GgufFile::get_number(std::string_view key) const {
    auto const& v = value_of(key);
    if (auto const* f = std::get_if<float>(&v.data)) return *f;
    if (auto const* d = std::get_if<double>(&v.data)) return *d;
    if (v.type() == GgufType::Bool || v.type() == GgufType::String || v.type() == GgufType::Array)
        fail_here("metadata key '", key, "' has type ", gguf_type_name(v.type()), ", expected a number");
    return double(get_integer(key));
}

template <class E>
std::vector<E> const& GgufFile::get_array(std::string_view key) const {
    auto const& array = get<GgufArray>(key);
    auto const* p = std::get_if<std::vector<E>>(&array.elements);
    if (!p) {
        constexpr auto expected = detail::index_in<std::vector<E>>(static_cast<GgufArrayElements const*>(nullptr));
        fail_here("metadata array '", key, "' has elements of type ", gguf_type_name(array.element_type()),
                  ", expected ", gguf_type_name(GgufType(expected)));
    }
    return *p;
}

inline GgufTensorInfo const* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

inline GgufTensorInfo const& GgufFile::tensor(std::string_view name) const {
    auto const* t = find_tensor(name);
    if (!t) fail_here("no tensor named '", name, "'");
    return *t;
}

inline std::span<std::byte const> GgufFile::tensor_bytes(std::string_view name) const {
    auto const& t = tensor(name);
    return file_.bytes().subspan(std::size_t(t.file_offset), std::size_t(t.bytes));
}

template <class T>
void GgufFile::read_tensor(std::string_view name, std::span<T> out) const {
    static_assert(std::is_floating_point_v<T>, "read_tensor converts into float or double");
    auto const& t = tensor(name);
    if (std::int64_t(out.size()) != t.elements)
        fail_here("tensor '", name, "' has ", t.elements, " elements but the destination holds ", out.size());
    auto const* src = file_.bytes().data() + t.file_offset;
    auto const n = out.size();
    switch (t.type) {
        case GgmlType::F32:
            for (std::size_t i = 0; i < n; ++i) {
                float x;
                std::memcpy(&x, src + 4 * i, 4);
                out[i] = T(x);
            }
            return;
        case GgmlType::F16:
        case GgmlType::BF16: {
            bool const half = t.type == GgmlType::F16;
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t x;
                std::memcpy(&x, src + 2 * i, 2);
                out[i] = T(half ? half_to_float(x) : bf16_to_float(x));
            }
            return;
        }
        case GgmlType::Q8_0:  // blocks of 34 bytes: an fp16 scale d, then 32 int8 q; x = d * q
            for (std::size_t b = 0; b < n / 32; ++b) {
                std::uint16_t d;
                std::memcpy(&d, src + 34 * b, 2);
                float const scale = half_to_float(d);
                for (std::size_t j = 0; j < 32; ++j) {
                    std::int8_t q;
                    std::memcpy(&q, src + 34 * b + 2 + j, 1);
                    out[32 * b + j] = T(scale * float(q));
                }
            }
            return;
        default:
            fail_here("tensor '", name, "' has type ", ggml_type_name(t.type),
                      "; only F32, F16, BF16 and Q8_0 tensors can be read (other quantized types are not supported)");
    }
}

inline GgufVocabulary GgufFile::vocabulary() const {
    GgufVocabulary v;
    v.model = get_string("tokenizer.ggml.model");
    if (contains("tokenizer.ggml.pre")) v.pre = get_string("tokenizer.ggml.pre");
    v.tokens = get_array<std::string>("tokenizer.ggml.tokens");
    auto const n = v.tokens.size();
    if (n == 0) fail_here("tokenizer.ggml.tokens is empty");
    if (contains("tokenizer.ggml.scores")) v.scores = get_array<float>("tokenizer.ggml.scores");
    if (contains("tokenizer.ggml.token_type")) v.token_types = get_array<std::int32_t>("tokenizer.ggml.token_type");
    if (contains("tokenizer.ggml.merges")) v.merges = get_array<std::string>("tokenizer.ggml.merges");
    if (!v.scores.empty() && v.scores.size() != n)
        fail_here("tokenizer.ggml.scores has ", v.scores.size(), " entries but there are ", n, " tokens");
    if (!v.token_types.empty() && v.token_types.size() != n)
        fail_here("tokenizer.ggml.token_type has ", v.token_types.size(), " entries but there are ", n, " tokens");
    auto special = [&](char const* key, std::int32_t& id) {
        if (!contains(key)) return;
        auto const value = get_integer(key);
        if (value < 0 || std::uint64_t(value) >= n)
            fail_here(key, " is ", value, ", outside the vocabulary of ", n, " tokens");
        id = std::int32_t(value);
    };
    special("tokenizer.ggml.bos_token_id", v.bos_id);
    special("tokenizer.ggml.eos_token_id", v.eos_id);
    special("tokenizer.ggml.unknown_token_id", v.unk_id);
    special("tokenizer.ggml.padding_token_id", v.pad_id);
    v.add_bos =
        contains("tokenizer.ggml.add_bos_token") ? get_bool("tokenizer.ggml.add_bos_token") : v.model == "llama";
    v.add_eos = contains("tokenizer.ggml.add_eos_token") && get_bool("tokenizer.ggml.add_eos_token");
    return v;
}

}  // namespace polyalpaca::io
