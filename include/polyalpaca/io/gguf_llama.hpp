/// @file io/gguf_llama.hpp
/// @brief LLaMA in GGUF files made elsewhere (llama.cpp's converter, llama2.c's exports): hyperparameters, GGUF <-> HF
///        tensor names, a check against a Llama Size, and weight loading. Writing any family: io/gguf_export.hpp.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyalpaca/io/gguf.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/io/llama_weights.hpp"

namespace polyalpaca::io {

/// The llama.* hyperparameters of a GGUF file (general.architecture must be "llama").
struct LlamaHyperparameters {
    std::int64_t vocab = 0;           ///< llama.vocab_size, else the token count, else token_embd.weight's ne1
    std::int64_t hidden = 0;          ///< llama.embedding_length
    std::int64_t layers = 0;          ///< llama.block_count
    std::int64_t ffn = 0;             ///< llama.feed_forward_length
    std::int64_t heads = 0;           ///< llama.attention.head_count
    std::int64_t kv_heads = 0;        ///< llama.attention.head_count_kv, default heads
    std::int64_t rotary_dim = 0;      ///< llama.rope.dimension_count, default hidden / heads
    std::int64_t context_length = 0;  ///< llama.context_length
    double norm_eps = 0;              ///< llama.attention.layer_norm_rms_epsilon
    double rope_base = 10000.0;       ///< llama.rope.freq_base, default 10000 as in llama.cpp
};

inline LlamaHyperparameters llama_hyperparameters(GgufFile const& f) {
    auto const file = f.path().string();
    auto const& arch = f.get_string("general.architecture");
    require(arch == "llama", file, ": general.architecture is '", printable_excerpt(arch), "', expected 'llama'");
    LlamaHyperparameters h;
    h.hidden = f.get_integer("llama.embedding_length");
    h.layers = f.get_integer("llama.block_count");
    h.ffn = f.get_integer("llama.feed_forward_length");
    h.heads = f.get_integer("llama.attention.head_count");
    h.kv_heads = f.contains("llama.attention.head_count_kv") ? f.get_integer("llama.attention.head_count_kv") : h.heads;
    h.context_length = f.get_integer("llama.context_length");
    h.norm_eps = f.get_number("llama.attention.layer_norm_rms_epsilon");
    if (f.contains("llama.rope.freq_base")) h.rope_base = f.get_number("llama.rope.freq_base");
    if (f.contains("llama.vocab_size"))
        h.vocab = f.get_integer("llama.vocab_size");
    else if (f.contains("tokenizer.ggml.tokens"))
        h.vocab = std::int64_t(f.get_array<std::string>("tokenizer.ggml.tokens").size());
    else if (auto const* t = f.find_tensor("token_embd.weight"); t && t->dims.size() == 2)
        h.vocab = t->dims[1];
    for (auto [value, key] : {std::pair{h.hidden, "embedding_length"}, std::pair{h.layers, "block_count"},
                              std::pair{h.ffn, "feed_forward_length"}, std::pair{h.heads, "attention.head_count"},
                              std::pair{h.kv_heads, "attention.head_count_kv"},
                              std::pair{h.context_length, "context_length"}, std::pair{h.vocab, "vocab_size"}})
        require(value > 0, file, ": llama.", key, " is ", value, ", expected a positive number");
    require(h.hidden % h.heads == 0, file, ": llama.attention.head_count ", h.heads,
            " does not divide the embedding length ", h.hidden);
    require(h.heads % h.kv_heads == 0, file, ": llama.attention.head_count_kv ", h.kv_heads,
            " does not divide head_count ", h.heads);
    h.rotary_dim =
        f.contains("llama.rope.dimension_count") ? f.get_integer("llama.rope.dimension_count") : h.hidden / h.heads;
    require(h.norm_eps > 0 && std::isfinite(h.norm_eps), file, ": llama.attention.layer_norm_rms_epsilon is ",
            h.norm_eps);
    require(h.rope_base > 0 && std::isfinite(h.rope_base), file, ": llama.rope.freq_base is ", h.rope_base);
    return h;
}

/// Throws unless the file's hyperparameters are those of the Llama Size `Size`, listing every difference.
/// The Size may allow fewer positions than the file's context length, not more.
template <class Size>
void check_llama_size(GgufFile const& f, LlamaHyperparameters const& h) {
    std::string diff;
    auto compare = [&](char const* what, auto file_value, auto model_value) {
        bool same = false;
        if constexpr (std::is_floating_point_v<decltype(model_value)>)  // the file stores f32
            same = std::abs(double(file_value) - model_value) <= 1e-6 * std::abs(double(model_value));
        else
            same = file_value == model_value;
        if (!same) diff += polyalpaca::detail::concat("\n  ", what, ": file ", file_value, ", model ", model_value);
    };
    compare("vocab", h.vocab, Size::vocab);
    compare("hidden (llama.embedding_length)", h.hidden, Size::hidden);
    compare("layers (llama.block_count)", h.layers, Size::layers);
    compare("ffn (llama.feed_forward_length)", h.ffn, Size::ffn);
    compare("heads (llama.attention.head_count)", h.heads, Size::heads);
    compare("kv_heads (llama.attention.head_count_kv)", h.kv_heads, Size::kv_heads);
    compare("rotary dims (llama.rope.dimension_count)", h.rotary_dim, Size::hidden / Size::heads);
    compare("rope_base (llama.rope.freq_base)", h.rope_base, Size::rope_base);
    compare("norm_eps (llama.attention.layer_norm_rms_epsilon)", h.norm_eps, Size::norm_eps);
    if (Size::max_positions > h.context_length)
        diff += polyalpaca::detail::concat("\n  max_positions: model ", Size::max_positions,
                                           " exceeds the file's llama.context_length ", h.context_length);
    require(diff.empty(), f.path().string(), ": the file's LLaMA does not match the model type:", diff);
}

/// The HF name of a llama GGUF tensor ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"), or
/// nullopt for a name outside the llama architecture.
inline std::optional<std::string> hf_name_of_gguf_llama(std::string_view gguf) {
    if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
    if (gguf == "output_norm.weight") return "model.norm.weight";
    if (gguf == "output.weight") return "lm_head.weight";
    if (!gguf.starts_with("blk.")) return std::nullopt;
    auto const dot = gguf.find('.', 4);
    auto const layer = gguf.substr(4, dot == std::string_view::npos ? 0 : dot - 4);
    if (layer.empty() || layer.size() > 6 || layer.find_first_not_of("0123456789") != std::string_view::npos ||
        (layer.size() > 1 && layer[0] == '0'))
        return std::nullopt;
    auto const rest = gguf.substr(dot + 1);
    for (auto const& part : llama::Gguf::block_parts)
        if (rest == std::string(part.gguf) + ".weight")
            return "model.layers." + std::string(layer) + "." + std::string(part.hf) + ".weight";
    return std::nullopt;
}

/// The GGUF name of a LLaMA parameter's HF name, or nullopt (the inverse of hf_name_of_gguf_llama).
inline std::optional<std::string> gguf_name_of_hf_llama(std::string_view hf) {
    auto place = llama::Gguf::tensor(hf);
    if (!place) return std::nullopt;
    return std::move(place->name);
}

/// Loads every base weight of `net` from a llama GGUF file (F32/F16/BF16 tensors) after check_llama_size. GGUF holds
/// q/k rows in Meta's interleaved layout (llama.cpp's converter permutes HF's); see LlamaWeightLoader. Every tensor of
/// the file must have a place in the model and every base weight must be in the file.
template <class Model, class Backend, class T>
void load_llama_gguf(typename Backend::Context& ctx, GgufFile const& f, CausalLm<Model, Backend, T>& net) {
    auto const file = f.path().string();
    check_llama_size<typename Model::config>(f, llama_hyperparameters(f));
    LlamaWeightLoader<Model, Backend, T> loader(ctx, net, file);
    std::vector<T> values;
    for (auto const& t : f.tensors()) {
        auto const hf = hf_name_of_gguf_llama(t.name);
        require(hf.has_value(), file, ": tensor '", printable_excerpt(t.name), "' (described at offset ", t.info_offset,
                ") is not a LLaMA weight this loader knows");
        require(*hf != "lm_head.weight" || !Model::tied_head, file,
                ": the file has an untied output.weight but the model "
                "type ties its head to the embedding");
        auto& p = loader.parameter(*hf);
        std::vector<std::int64_t> const expected =
            p.rows == 1 ? std::vector<std::int64_t>{p.cols} : std::vector<std::int64_t>{p.cols, p.rows};
        if (t.dims != expected) {
            std::string dims;
            for (auto d : t.dims) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
            fail(file, ": tensor '", printable_excerpt(t.name), "' has dims [", dims, "] but '", *hf, "' of shape (", p.rows, ", ", p.cols,
                 ") needs dims [", p.cols, p.rows == 1 ? "" : ", " + std::to_string(p.rows), "]");
        }
        values.resize(std::size_t(p.size()));
        f.read_tensor(t.name, std::span<T>(values));
        loader.set(*hf, values);
    }
    loader.finish();
}

}  // namespace polyalpaca::io
