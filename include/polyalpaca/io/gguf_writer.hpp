/// @file io/gguf_writer.hpp
/// @brief Writing GGUF v3 files (llama.cpp): typed metadata, a tensor directory, and each tensor encoded as F32,
///        F16, BF16 or Q8_0 and streamed to disk one tensor at a time (no second copy of the weights); the file
///        appears atomically. GgufFile (io/gguf.hpp) reads what it writes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/dtype.hpp"
#include "polyalpaca/io/gguf.hpp"

namespace polyalpaca::io {

/// Elements of one Q8_0 block: an fp16 scale, then 32 int8 values.
inline constexpr std::size_t q8_0_block = 32;

/// True when a tensor of `elements` values with dimension 0 of `ne0` can be stored as `type` (block types need
/// ne0 to be a whole number of blocks).
inline bool ggml_type_fits(GgmlType type, std::int64_t ne0) {
    auto const* traits = ggml_type_traits(std::uint32_t(type));
    return traits != nullptr && ne0 % std::int64_t(traits->block_size) == 0;
}

/// Appends `values` (ggml's order: dimension 0 fastest) encoded as `type` to `out`. F16 and BF16 round to nearest
/// even; Q8_0 is ggml's reference quantizer (quantize_row_q8_0_ref, which gguf-py reproduces bit for bit): per
/// block of 32, d = max |x| / 127, q = roundf(x * (1 / d)), d stored as fp16.
inline void encode_ggml(GgmlType type, std::span<float const> values, std::vector<std::byte>& out) {
    auto put = [&](auto v) {
        auto const at = out.size();
        out.resize(at + sizeof v);
        std::memcpy(out.data() + at, &v, sizeof v);
    };
    switch (type) {
        case GgmlType::F32:
            for (float v : values) put(v);
            return;
        case GgmlType::F16:
            for (float v : values) put(float_to_half(v));
            return;
        case GgmlType::BF16:
            for (float v : values) put(float_to_bf16(v));
            return;
        case GgmlType::Q8_0: {
            require(values.size() % q8_0_block == 0, "Q8_0 stores blocks of 32 values; ", values.size(),
                    " values do not fill whole blocks");
            for (std::size_t b = 0; b < values.size(); b += q8_0_block) {
                float amax = 0.0f;
                for (std::size_t j = 0; j < q8_0_block; ++j) amax = std::max(amax, std::abs(values[b + j]));
                float const d = amax / 127.0f;
                float const id = d != 0.0f ? 1.0f / d : 0.0f;
                put(float_to_half(d));
                for (std::size_t j = 0; j < q8_0_block; ++j) put(std::int8_t(std::roundf(values[b + j] * id)));
            }
            return;
        }
        default:
            fail("cannot write GGUF tensors of type ", ggml_type_name(type), ": F32, F16, BF16 and Q8_0 are written");
    }
}

/// A GGUF v3 file being assembled: metadata and tensors are declared first, and write() encodes each tensor's
/// values as it reaches it. Tensor data is aligned to general.alignment (32 unless set).
class GgufWriter {
public:
    /// Fills the tensor's values, in ggml's order, into the span (its element count).
    using Fill = std::function<void(std::span<float>)>;

    void set(std::string key, GgufValue value) { metadata_[std::move(key)] = std::move(value); }
    void set(std::string key, std::string value) { set(std::move(key), GgufValue{std::move(value)}); }

    /// A tensor of dims `dims` (ggml's order: a PyTorch (out, in) weight has dims [in, out]) stored as `type`.
    void add_tensor(std::string name, std::vector<std::int64_t> dims, GgmlType type, Fill fill) {
        require(!name.empty() && !dims.empty(), "a GGUF tensor needs a name and dims");
        for (auto const& t : tensors_) require(t.name != name, "GGUF tensor '", name, "' is added twice");
        std::int64_t elements = 1;
        for (auto d : dims) {
            require(d > 0, "GGUF tensor '", name, "' has a dimension of ", d);
            elements *= d;
        }
        require(ggml_type_fits(type, dims[0]), "GGUF tensor '", name, "': dimension 0 (", dims[0],
                ") is not a whole number of ", ggml_type_name(type), " blocks");
        tensors_.push_back({std::move(name), std::move(dims), type, elements, std::move(fill)});
    }

    /// Writes the file atomically: header, metadata, tensor directory, then each tensor's data in order.
    void write(std::filesystem::path const& path) const {
        std::uint32_t const alignment = this->alignment();
        std::vector<std::byte> head;
        auto put = [&](auto v) {
            auto const at = head.size();
            head.resize(at + sizeof v);
            std::memcpy(head.data() + at, &v, sizeof v);
        };
        auto put_string = [&](std::string const& s) {
            put(std::uint64_t(s.size()));
            auto const at = head.size();
            head.resize(at + s.size());
            std::memcpy(head.data() + at, s.data(), s.size());
        };
        for (char const c : {'G', 'G', 'U', 'F'}) head.push_back(std::byte(c));
        put(std::uint32_t(3));
        put(std::uint64_t(tensors_.size()));
        put(std::uint64_t(metadata_.size()));
        for (auto const& [key, value] : metadata_) {
            put_string(key);
            put(std::uint32_t(value.type()));
            write_value(value, put, put_string);
        }
        std::uint64_t offset = 0;
        std::vector<std::uint64_t> sizes;
        for (auto const& t : tensors_) {
            put_string(t.name);
            put(std::uint32_t(t.dims.size()));
            for (auto d : t.dims) put(std::uint64_t(d));
            put(std::uint32_t(t.type));
            put(offset);
            auto const* traits = ggml_type_traits(std::uint32_t(t.type));
            sizes.push_back(std::uint64_t(t.elements) / traits->block_size * traits->block_bytes);
            offset = padded(offset + sizes.back(), alignment);
        }
        head.resize(padded(head.size(), alignment));

        AtomicFile file(path);
        file.write(head);
        std::vector<float> values;
        std::vector<std::byte> bytes;
        for (std::size_t i = 0; i < tensors_.size(); ++i) {
            auto const& t = tensors_[i];
            values.assign(std::size_t(t.elements), 0.0f);
            t.fill(std::span<float>(values));
            bytes.clear();
            encode_ggml(t.type, values, bytes);
            bytes.resize(padded(bytes.size(), alignment));
            require(bytes.size() == padded(sizes[i], alignment), "GGUF tensor '", t.name, "' encoded to ", bytes.size(),
                    " bytes, expected ", sizes[i]);
            file.write(bytes);
        }
        file.commit();
    }

private:
    struct Tensor {
        std::string name;
        std::vector<std::int64_t> dims;
        GgmlType type;
        std::int64_t elements;
        Fill fill;
    };

    static std::uint64_t padded(std::uint64_t n, std::uint32_t alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    std::uint32_t alignment() const {
        auto it = metadata_.find("general.alignment");
        if (it == metadata_.end()) return GgufFile::default_alignment;
        auto const* a = std::get_if<std::uint32_t>(&it->second.data);
        require(a != nullptr && *a > 0 && *a % 8 == 0, "general.alignment must be a u32 multiple of 8");
        return *a;
    }

    template <class Put, class PutString>
    static void write_value(GgufValue const& value, Put& put, PutString& put_string) {
        std::visit(
            [&](auto const& v) {
                using V = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<V, std::string>) {
                    put_string(v);
                } else if constexpr (std::is_same_v<V, bool>) {
                    put(std::uint8_t(v ? 1 : 0));
                } else if constexpr (std::is_same_v<V, GgufArray>) {
                    put(std::uint32_t(v.element_type()));
                    put(std::uint64_t(v.size()));
                    std::visit(
                        [&](auto const& elements) {
                            using E = std::decay_t<decltype(elements)>;
                            if constexpr (!std::is_same_v<E, std::monostate>) {
                                for (auto const& e : elements) {
                                    if constexpr (std::is_same_v<typename E::value_type, std::string>)
                                        put_string(e);
                                    else if constexpr (std::is_same_v<typename E::value_type, bool>)
                                        put(std::uint8_t(e ? 1 : 0));
                                    else
                                        put(e);
                                }
                            }
                        },
                        v.elements);
                } else {
                    put(v);
                }
            },
            value.data);
    }

    std::map<std::string, GgufValue> metadata_;
    std::vector<Tensor> tensors_;
};

}  // namespace polyalpaca::io
