/// @file models/model_spec.hpp
/// @brief ModelSpec: a model type's architecture as runtime values (what config.json describes), and spec_of, the
///        spec of a family type.
#pragma once

#include <cstdint>
#include <string>

#include "polyalpaca/backend/op_types.hpp"

namespace polyalpaca {

/// What config.json describes, as one of our model types fixes it.
struct ModelSpec {
    std::string family;  ///< HF model_type: "bloom", "gpt_neox", "llama"
    std::int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0;
    double rotary_pct = 0;  ///< fraction of each head rotated (GPT-NeoX; 1 for LLaMA, 0 for ALiBi)
    double rope_theta = 0;  ///< rotary base (0 for ALiBi)
    double norm_eps = 0;
    bool tied_head = false;
    bool rope_rotate_half = true;   ///< HF's rotate-half layout (false: Meta's adjacent pairs)
    bool parallel_residual = true;  ///< GPT-NeoX's use_parallel_residual (the others are sequential)
    std::int64_t parameter_count = 0;
};

/// The spec of a family type such as Llama<llama::SizeTiny> (the adapter does not matter).
template <class Model>
ModelSpec spec_of() {
    using C = typename Model::config;
    ModelSpec s;
    s.family = Model::family;
    s.vocab = C::vocab;
    s.hidden = C::hidden;
    s.layers = C::layers;
    s.heads = C::heads;
    if constexpr (requires { C::kv_heads; })
        s.kv_heads = C::kv_heads;
    else
        s.kv_heads = C::heads;
    s.ffn = Model::ffn;
    if constexpr (requires { C::rotary_pct; })
        s.rotary_pct = C::rotary_pct;
    else if constexpr (requires { C::rope_base; })
        s.rotary_pct = 1.0;
    if constexpr (requires { C::rope_base; }) s.rope_theta = C::rope_base;
    if constexpr (requires { C::rope_style; }) s.rope_rotate_half = C::rope_style == RopeStyle::RotateHalf;
    if constexpr (requires { C::parallel_residual; }) s.parallel_residual = C::parallel_residual;
    s.norm_eps = C::norm_eps;
    s.tied_head = Model::tied_head;
    s.parameter_count = Model::parameter_count;
    return s;
}

/// Weights of one block with LayerNorms (scale and shift), a fused qkv projection, an output projection and a
/// two-layer MLP `f` wide, all with biases: BLOOM's and GPT-NeoX's block at hidden size `h`.
constexpr std::int64_t biased_fused_block_parameters(std::int64_t h, std::int64_t f) {
    return 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h);
}

/// A named size of a family (a published checkpoint, or a test size) and its spec.
struct Preset {
    std::string name;
    ModelSpec spec;
};

}  // namespace polyalpaca
