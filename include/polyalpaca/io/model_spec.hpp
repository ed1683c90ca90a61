/// @file io/model_spec.hpp
/// @brief ModelSpec: a model type's architecture as runtime values, and the table of presets in models/*.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "polyalpaca/backend/cpu/rope.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"

namespace polyalpaca::io {

/// What config.json describes, as one of our model types fixes it.
struct ModelSpec {
    std::string family;  ///< HF model_type: "bloom", "gpt_neox", "llama"
    std::int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0;
    double rotary_pct = 0;  ///< fraction of each head rotated (GPT-NeoX; 1 for LLaMA, 0 for ALiBi)
    double rope_theta = 0;  ///< rotary base (0 for ALiBi)
    double norm_eps = 0;
    bool tied_head = false;
    bool rope_rotate_half = true;  ///< HF's rotate-half layout (false: Meta's adjacent pairs)
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
    if constexpr (requires { C::ffn; })
        s.ffn = C::ffn;
    else
        s.ffn = 4 * std::int64_t(C::hidden);
    if constexpr (requires { C::rotary_pct; })
        s.rotary_pct = C::rotary_pct;
    else if constexpr (requires { C::rope_base; })
        s.rotary_pct = 1.0;
    if constexpr (requires { C::rope_base; }) s.rope_theta = C::rope_base;
    if constexpr (requires { C::rope_style; }) s.rope_rotate_half = C::rope_style == RopeStyle::RotateHalf;
    s.norm_eps = C::norm_eps;
    s.tied_head = Model::tied_head;
    s.parameter_count = Model::parameter_count;
    return s;
}

/// Weights of the base model a spec describes (the tied head counted once), as the family types count them.
inline std::int64_t parameter_count(ModelSpec const& s) {
    std::int64_t const h = s.hidden, v = s.vocab, f = s.ffn;
    if (s.family == "bloom") {  // LayerNorms with bias, fused qkv with bias, 4h MLP with bias, tied head
        std::int64_t const block = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h);
        return v * h + 4 * h + s.layers * block;
    }
    if (s.family == "gpt_neox") {  // as BLOOM, plus an untied embed_out, no embedding norm
        std::int64_t const block = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h);
        return 2 * v * h + 2 * h + s.layers * block;
    }
    if (s.family == "llama") {  // RMSNorms, no biases, grouped-query k / v, SwiGLU
        std::int64_t const kv = s.heads > 0 ? s.kv_heads * (h / s.heads) : 0;
        std::int64_t const block = 2 * h + 2 * h * h + 2 * h * kv + 3 * h * f;
        return (s.tied_head ? 1 : 2) * v * h + h + s.layers * block;
    }
    return 0;
}

struct Preset {
    std::string name;
    ModelSpec spec;
};

/// Every size preset of models/*.hpp, by the name of the checkpoint it matches.
inline std::vector<Preset> const& presets() {
    static std::vector<Preset> const table{
        {"bloom-560m", spec_of<Bloom<bloom::Size560m>>()},
        {"bloom-1b1", spec_of<Bloom<bloom::Size1b1>>()},
        {"bloom-1b7", spec_of<Bloom<bloom::Size1b7>>()},
        {"bloom-3b", spec_of<Bloom<bloom::Size3b>>()},
        {"bloom-7b1", spec_of<Bloom<bloom::Size7b1>>()},
        {"bloom-tiny", spec_of<Bloom<bloom::SizeTiny>>()},
        {"pythia-70m", spec_of<GptNeoX<gpt_neox::Size70m>>()},
        {"pythia-160m", spec_of<GptNeoX<gpt_neox::Size160m>>()},
        {"pythia-410m", spec_of<GptNeoX<gpt_neox::Size410m>>()},
        {"pythia-1b", spec_of<GptNeoX<gpt_neox::Size1b>>()},
        {"pythia-1.4b", spec_of<GptNeoX<gpt_neox::Size1b4>>()},
        {"pythia-2.8b", spec_of<GptNeoX<gpt_neox::Size2b8>>()},
        {"pythia-6.9b", spec_of<GptNeoX<gpt_neox::Size6b9>>()},
        {"pythia-12b", spec_of<GptNeoX<gpt_neox::Size12b>>()},
        {"gpt-neox-tiny", spec_of<GptNeoX<gpt_neox::SizeTiny>>()},
        {"llama-7b", spec_of<Llama<llama::Size7b>>()},
        {"llama-13b", spec_of<Llama<llama::Size13b>>()},
        {"open-llama-3b", spec_of<Llama<llama::OpenLlama3b>>()},
        {"open-llama-7b", spec_of<Llama<llama::OpenLlama7b>>()},
        {"open-llama-13b", spec_of<Llama<llama::OpenLlama13b>>()},
        {"llama-tiny", spec_of<Llama<llama::SizeTiny>>()},
        {"llama-tiny-tied", spec_of<Llama<llama::SizeTinyTied>>()},
    };
    return table;
}

}  // namespace polyalpaca::io
