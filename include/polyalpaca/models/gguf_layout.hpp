/// @file models/gguf_layout.hpp
/// @brief The vocabulary a family's GGUF side (`<family>::Gguf` in models/<family>.hpp) speaks in: where an HF
///        parameter goes in a llama.cpp GGUF file, how its rows are ordered there, and the architecture's
///        hyperparameter keys. io/gguf_export.hpp writes and reads models by it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace polyalpaca {

/// How a parameter's rows are ordered in GGUF relative to HF.
enum class GgufRows {
    Same,
    /// A fused query_key_value (BLOOM, GPT-NeoX): HF interleaves q, k, v per head ([h][3][d] rows); llama.cpp's
    /// converter stores all heads' q, then k, then v ([3][h][d]).
    FusedQkvByKind,
    /// LLaMA's q_proj / k_proj: HF's rotate-half rows, permuted to Meta's interleaved pairs (over the attention heads
    /// / over the kv heads) when the model rotates halves.
    RopeQuery,
    RopeKey,
};

/// A parameter's GGUF tensor name ("blk.3.attn_qkv.weight") and row order.
struct GgufTensorPlace {
    std::string name;
    GgufRows rows = GgufRows::Same;
};

/// One `<architecture>.<key>` hyperparameter, typed as llama.cpp's converter writes it.
struct GgufHyperparameter {
    std::string key;  ///< after the architecture prefix: "context_length", "attention.layer_norm_epsilon"
    std::variant<std::uint32_t, float, bool> value;
};

/// One row of a gguf_block_place table: an HF block part, its GGUF part, their row order.
struct GgufBlockPart {
    std::string_view hf;
    std::string_view gguf;
    GgufRows rows = GgufRows::Same;
};

/// The place of a block parameter "<prefix><N>.<hf part>.<weight|bias>" whose part is in `parts` (HF part -> GGUF
/// part, e.g. {"self_attention.dense", "attn_output"}), as "blk.<N>.<gguf part>.<weight|bias>"; nullopt otherwise.
template <std::size_t N>
std::optional<GgufTensorPlace> gguf_block_place(std::string_view hf, std::string_view prefix,
                                                GgufBlockPart const (&parts)[N]) {
    if (!hf.starts_with(prefix)) return std::nullopt;
    auto const dot = hf.find('.', prefix.size());
    if (dot == std::string_view::npos || dot == prefix.size()) return std::nullopt;
    auto const layer = hf.substr(prefix.size(), dot - prefix.size());
    if (layer.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    auto const rest = hf.substr(dot + 1);
    for (auto const& [hf_part, gguf_part, rows] : parts) {
        for (std::string_view suffix : {".weight", ".bias"}) {
            if (rest.size() == hf_part.size() + suffix.size() && rest.starts_with(hf_part) && rest.ends_with(suffix))
                return GgufTensorPlace{"blk." + std::string(layer) + "." + std::string(gguf_part) + std::string(suffix),
                                       rows};
        }
    }
    return std::nullopt;
}

}  // namespace polyalpaca
