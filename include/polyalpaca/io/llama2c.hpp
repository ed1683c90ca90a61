/// @file io/llama2c.hpp
/// @brief llama2.c checkpoints (karpathy/llama2.c export.py): legacy version 0, fp32 version 1, Q8_0 version 2.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/llama_weights.hpp"
#include "polyalpaca/io/mapped_file.hpp"

namespace polyalpaca::io {

/// "ak42": the first u32 of version 1 and 2 files; version 0 files start with dim.
inline constexpr std::uint32_t llama2c_magic = 0x616b3432u;

/// The header of a llama2.c checkpoint, validated.
struct Llama2cHeader {
    int version = 0;  ///< 0 legacy (7 int32 header), 1 fp32, 2 int8 Q8_0 groups (both with a 256-byte header)
    int dim = 0, hidden_dim = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, seq_len = 0;
    bool shared_classifier = true;  ///< version 0: vocab_size > 0 in the file; versions 1, 2: the flag byte
    int group_size = 0;             ///< version 2 only
    int head_dim() const { return dim / heads; }
    int kv_dim() const { return kv_heads * head_dim(); }
};

/// Where one weight lies in the file, in HF naming and shape.
struct Llama2cTensor {
    std::string hf_name;
    Index rows = 0, cols = 0;
    std::uint64_t offset = 0;        ///< float32 values, or int8 values in version 2
    std::uint64_t scale_offset = 0;  ///< version 2 quantized weights: their float32 group scales
    bool quantized = false;
};

/// Every weight's place, and (version 0) the freq_cis tables; `end` is the exact file size the header implies.
struct Llama2cLayout {
    Llama2cHeader header;
    std::vector<Llama2cTensor> tensors;
    std::uint64_t freq_cos_offset = 0, freq_sin_offset = 0;  ///< version 0: (seq_len, head_dim / 2) each
    std::uint64_t end = 0;
};

namespace detail {

template <class V>
V llama2c_read(MappedFile const& f, std::uint64_t offset) {
    V v;
    std::memcpy(&v, f.bytes().data() + offset, sizeof(V));
    return v;
}

/// Lays weights out in file order, checking every size and offset for overflow. A dry run only sums the sizes
/// (each per-layer group at once), so the file size is checked before any per-layer work.
class Llama2cPlanner {
public:
    enum class Kind { F32, Int8 };

    Llama2cPlanner(std::string file, std::uint64_t start, int group_size, int layers, std::vector<Llama2cTensor>* out)
        : file_(std::move(file)), at_(start), group_size_(group_size), layers_(layers), out_(out) {}

    std::uint64_t count(std::uint64_t a, std::uint64_t b) const {
        std::uint64_t n = 0;
        require(!__builtin_mul_overflow(a, b, &n), file_, ": the header's sizes overflow");
        return n;
    }
    std::uint64_t skip(std::uint64_t bytes) {
        auto const start = at_;
        require(!__builtin_add_overflow(at_, bytes, &at_), file_, ": the header's sizes overflow");
        return start;
    }
    /// One weight called `name`, or (per_layer) one per layer called model.layers.<l>.<name>.
    void weight(Kind kind, std::string const& name, Index rows, Index cols, bool per_layer = false) {
        auto const n = count(std::uint64_t(rows), std::uint64_t(cols));
        auto const copies = per_layer ? std::uint64_t(layers_) : 1;
        if (kind == Kind::Int8) {
            require(n % std::uint64_t(group_size_) == 0, file_, ": '", name, "' has ", n,
                    " values, not a multiple of the group size ", group_size_);
            std::uint64_t total = 0;
            require(
                !__builtin_add_overflow(scale_bytes_, count(count(n / std::uint64_t(group_size_), 4), copies), &total),
                file_, ": the header's sizes overflow");
            scale_bytes_ = total;
        }
        auto const bytes = count(n, kind == Kind::F32 ? 4 : 1);
        if (!out_) {
            skip(count(bytes, copies));
            return;
        }
        for (std::uint64_t l = 0; l < copies; ++l) {
            auto full = per_layer ? "model.layers." + std::to_string(l) + "." + name : name;
            out_->push_back({std::move(full), rows, cols, skip(bytes), 0, kind == Kind::Int8});
        }
    }
    /// Version 2: the float32 scales of every int8 weight follow all the int8 values, in the same order.
    void scales() {
        if (!out_) {
            skip(scale_bytes_);
            return;
        }
        for (auto& t : *out_)
            if (t.quantized)
                t.scale_offset = skip(count(std::uint64_t(t.rows * t.cols) / std::uint64_t(group_size_), 4));
    }
    std::uint64_t at() const { return at_; }

private:
    std::string file_;
    std::uint64_t at_;
    int group_size_;
    int layers_;
    std::vector<Llama2cTensor>* out_;
    std::uint64_t scale_bytes_ = 0;
};

/// Runs `plan` over the weights of a checkpoint with header `h`, in export.py's order for its version.
inline void plan_llama2c(Llama2cPlanner& plan, Llama2cHeader const& h, Llama2cLayout* layout) {
    using Kind = Llama2cPlanner::Kind;
    auto const big = h.version == 2 ? Kind::Int8 : Kind::F32;  // what version 2 quantizes
    auto matrices = [&] {
        plan.weight(big, "self_attn.q_proj.weight", h.dim, h.dim, true);
        plan.weight(big, "self_attn.k_proj.weight", h.kv_dim(), h.dim, true);
        plan.weight(big, "self_attn.v_proj.weight", h.kv_dim(), h.dim, true);
        plan.weight(big, "self_attn.o_proj.weight", h.dim, h.dim, true);
    };
    auto mlp = [&] {
        plan.weight(big, "mlp.gate_proj.weight", h.hidden_dim, h.dim, true);  // w1
        plan.weight(big, "mlp.down_proj.weight", h.dim, h.hidden_dim, true);  // w2
        plan.weight(big, "mlp.up_proj.weight", h.hidden_dim, h.dim, true);    // w3
    };
    if (h.version == 0) {
        plan.weight(Kind::F32, "model.embed_tokens.weight", h.vocab, h.dim);
        plan.weight(Kind::F32, "input_layernorm.weight", 1, h.dim, true);
        matrices();
        plan.weight(Kind::F32, "post_attention_layernorm.weight", 1, h.dim, true);
        mlp();
        plan.weight(Kind::F32, "model.norm.weight", 1, h.dim);
        auto const table = plan.count(plan.count(std::uint64_t(h.seq_len), std::uint64_t(h.head_dim() / 2)), 4);
        auto const cos_at = plan.skip(table), sin_at = plan.skip(table);
        if (layout) {
            layout->freq_cos_offset = cos_at;
            layout->freq_sin_offset = sin_at;
        }
    } else {
        plan.weight(Kind::F32, "input_layernorm.weight", 1, h.dim, true);
        plan.weight(Kind::F32, "post_attention_layernorm.weight", 1, h.dim, true);
        plan.weight(Kind::F32, "model.norm.weight", 1, h.dim);
        plan.weight(big, "model.embed_tokens.weight", h.vocab, h.dim);
        matrices();
        mlp();
    }
    if (!h.shared_classifier) plan.weight(big, "lm_head.weight", h.vocab, h.dim);
    if (h.version == 2) plan.scales();
}

}  // namespace detail

/// Reads and validates the header of `f` and lays out its weights; the file size must equal the layout's end.
inline Llama2cLayout llama2c_layout(MappedFile const& f) {
    auto const file = f.path().string();
    Llama2cLayout layout;
    auto& h = layout.header;
    require(f.size() >= 28, file, ": truncated: ", f.size(), " bytes cannot hold a llama2.c header (28 bytes or more)");
    bool const versioned = detail::llama2c_read<std::uint32_t>(f, 0) == llama2c_magic;
    std::uint64_t const fields_at = versioned ? 8 : 0;
    std::uint64_t const weights_at = versioned ? 256 : 28;
    if (versioned) {
        require(f.size() >= weights_at, file, ": truncated: ", f.size(), " bytes cannot hold the 256-byte header");
        h.version = detail::llama2c_read<std::int32_t>(f, 4);
        require(h.version == 1 || h.version == 2, file, ": at offset 4: unsupported llama2.c version ", h.version,
                " (versions 0, 1 and 2 are read)");
    }
    int* const fields[] = {&h.dim, &h.hidden_dim, &h.layers, &h.heads, &h.kv_heads, &h.vocab, &h.seq_len};
    char const* const names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; ++i) {
        *fields[i] = detail::llama2c_read<std::int32_t>(f, fields_at + 4 * i);
        if (i == 5 && h.version == 0) continue;  // the sign of vocab_size is the shared-classifier flag
        require(*fields[i] > 0, file, ": at offset ", fields_at + 4 * i, ": header field ", names[i], " is ",
                *fields[i], ", expected a positive number");
    }
    if (h.version == 0) {
        require(h.vocab != 0 && h.vocab != std::numeric_limits<std::int32_t>::min(), file,
                ": at offset 20: header field vocab_size is ", h.vocab);
        h.shared_classifier = h.vocab > 0;
        h.vocab = std::abs(h.vocab);
    } else {
        auto const flag = detail::llama2c_read<std::uint8_t>(f, 36);
        require(flag <= 1, file, ": at offset 36: the shared-classifier flag is ", int(flag), ", expected 0 or 1");
        h.shared_classifier = flag == 1;
        if (h.version == 2) {
            h.group_size = detail::llama2c_read<std::int32_t>(f, 37);
            require(h.group_size > 0, file, ": at offset 37: group size ", h.group_size,
                    ", expected a positive number");
        }
    }
    require(h.dim % h.heads == 0, file, ": n_heads ", h.heads, " does not divide dim ", h.dim);
    require(h.heads % h.kv_heads == 0, file, ": n_kv_heads ", h.kv_heads, " does not divide n_heads ", h.heads);
    require(h.head_dim() % 2 == 0, file, ": head size ", h.head_dim(), " is odd, so rotary pairs do not exist");

    std::uint64_t const weights_end = [&] {
        detail::Llama2cPlanner dry(file, weights_at, h.group_size, h.layers, nullptr);
        detail::plan_llama2c(dry, h, nullptr);
        return dry.at();
    }();
    layout.end = weights_end;
    require(f.size() == layout.end, file, ": the file has ", f.size(), " bytes but a version-", h.version,
            " checkpoint with this header (dim ", h.dim, ", hidden_dim ", h.hidden_dim, ", n_layers ", h.layers,
            ", n_heads ", h.heads, ", n_kv_heads ", h.kv_heads, ", vocab_size ", h.vocab, ", seq_len ", h.seq_len,
            h.shared_classifier ? ", shared classifier" : ", own classifier", ") has exactly ", layout.end);
    detail::Llama2cPlanner plan(file, weights_at, h.group_size, h.layers, &layout.tensors);
    detail::plan_llama2c(plan, h, &layout);
    return layout;
}

/// Loads a llama2.c checkpoint into a Llama model whose Size matches its header. llama2.c (like Meta) rotates
/// adjacent pairs: the model type uses RopeStyle::AdjacentPairs, or RotateHalf and gets q/k permuted on load.
/// run.c fixes RMSNorm eps at 1e-5 and the rotary base at 10000 (version 0 files also carry the rotary tables,
/// which are checked against the model's base). A shared classifier fills an untied lm_head with the embedding.
template <class Model, class Backend, class T>
Llama2cHeader load_llama2c(typename Backend::Context& ctx, std::filesystem::path const& path,
                           CausalLm<Model, Backend, T>& net) {
    using Size = typename Model::config;
    MappedFile const f(path);
    auto const file = path.string();
    auto const layout = llama2c_layout(f);
    auto const& h = layout.header;

    std::string diff;
    auto compare = [&](char const* what, int file_value, int model_value) {
        if (file_value != model_value)
            diff += polyalpaca::detail::concat("\n  ", what, ": file ", file_value, ", model ", model_value);
    };
    compare("dim (hidden)", h.dim, Size::hidden);
    compare("hidden_dim (ffn)", h.hidden_dim, Size::ffn);
    compare("n_layers", h.layers, Size::layers);
    compare("n_heads", h.heads, Size::heads);
    compare("n_kv_heads", h.kv_heads, Size::kv_heads);
    compare("vocab_size", h.vocab, Size::vocab);
    if (Size::max_positions > h.seq_len)
        diff += polyalpaca::detail::concat("\n  max_positions: model ", Size::max_positions,
                                           " exceeds the file's seq_len ", h.seq_len);
    if (Size::norm_eps != 1e-5)
        diff += polyalpaca::detail::concat("\n  norm_eps: llama2.c uses 1e-05, model ", Size::norm_eps);
    if (!h.shared_classifier && Model::tied_head)
        diff += "\n  the file has its own classifier but the model type ties its head to the embedding";
    require(diff.empty(), file, ": the checkpoint does not match the model type:", diff);

    if (h.version == 0) {  // freq_cos / freq_sin row 1 and the last row hold cos / sin(p * base^(-2i / head_dim))
        int const half = h.head_dim() / 2;
        for (int p : {std::min(1, h.seq_len - 1), h.seq_len - 1}) {
            for (int i = 0; i < half; ++i) {
                double const angle = p * std::pow(Size::rope_base, -2.0 * i / h.head_dim());
                auto const at = std::uint64_t(p) * std::uint64_t(half) + std::uint64_t(i);
                double const c = detail::llama2c_read<float>(f, layout.freq_cos_offset + 4 * at);
                double const s = detail::llama2c_read<float>(f, layout.freq_sin_offset + 4 * at);
                require(std::abs(c - std::cos(angle)) < 1e-3 && std::abs(s - std::sin(angle)) < 1e-3, file,
                        ": the rotary tables (freq_cis at position ", p, ", pair ", i,
                        ") do not match the model's "
                        "rope_base ",
                        Size::rope_base);
            }
        }
    } else {
        require(Size::rope_base == 10000.0, file, ": llama2.c uses rotary base 10000 but the model type has ",
                Size::rope_base);
    }

    LlamaWeightLoader<Model, Backend, T> loader(ctx, net, file);
    std::vector<T> values;
    for (auto const& w : layout.tensors) {
        values.resize(std::size_t(w.rows * w.cols));
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (w.quantized) {
                float const scale =
                    detail::llama2c_read<float>(f, w.scale_offset + 4 * (i / std::size_t(h.group_size)));
                values[i] = T(float(detail::llama2c_read<std::int8_t>(f, w.offset + i)) * scale);
            } else {
                values[i] = T(detail::llama2c_read<float>(f, w.offset + 4 * i));
            }
        }
        loader.set(w.hf_name, values);
        if (w.hf_name == "model.embed_tokens.weight" && h.shared_classifier && !Model::tied_head)
            loader.set("lm_head.weight", values);
    }
    loader.finish();
    return h;
}

}  // namespace polyalpaca::io
