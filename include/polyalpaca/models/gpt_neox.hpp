/// @file models/gpt_neox.hpp
/// @brief GPT-NeoX (Pythia) as a type: parallel attention + MLP residual, partial rotary, erf-GELU, untied head.
#pragma once

#include <string>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/backend/counting_backend.hpp"
#include "polyalpaca/layers/attention.hpp"
#include "polyalpaca/layers/mlp.hpp"
#include "polyalpaca/layers/norm.hpp"
#include "polyalpaca/layers/residual_block.hpp"

namespace polyalpaca {

namespace gpt_neox {

/// Settings shared by every Pythia size (HF GPTNeoXConfig as the Pythia checkpoints set it).
struct Defaults {
    static constexpr double norm_eps = 1e-5;
    static constexpr double init_std = 0.02;
    static constexpr int max_positions = 2048;
    static constexpr double rotary_pct = 0.25;
    static constexpr double rope_base = 10000.0;
};

// Sizes of the published checkpoints (EleutherAI/pythia-*); ffn = 4 * hidden throughout.
struct Size70m : Defaults { static constexpr int vocab = 50304, hidden = 512, layers = 6, heads = 8; };
struct Size160m : Defaults { static constexpr int vocab = 50304, hidden = 768, layers = 12, heads = 12; };
struct Size410m : Defaults { static constexpr int vocab = 50304, hidden = 1024, layers = 24, heads = 16; };
struct Size1b : Defaults { static constexpr int vocab = 50304, hidden = 2048, layers = 16, heads = 8; };
struct Size1b4 : Defaults { static constexpr int vocab = 50304, hidden = 2048, layers = 24, heads = 16; };
struct Size2b8 : Defaults { static constexpr int vocab = 50304, hidden = 2560, layers = 32, heads = 32; };
struct Size6b9 : Defaults { static constexpr int vocab = 50432, hidden = 4096, layers = 32, heads = 32; };
struct Size12b : Defaults { static constexpr int vocab = 50688, hidden = 5120, layers = 36, heads = 40; };
/// For tests and the embedded default (head_dim 8, rotary over the first 4 dims).
struct SizeTiny : Defaults {
    static constexpr int vocab = 96, hidden = 32, layers = 2, heads = 4;
    static constexpr double rotary_pct = 0.5;
};

using Sites = site::SiteList<site::Qkv, site::AttnOut, site::MlpUp, site::MlpDown>;

}  // namespace gpt_neox

template <class Size, Adapter A = NoAdapter>
struct GptNeoX {
    static_assert(Size::hidden % Size::heads == 0, "the number of attention heads must divide the hidden size");
    static_assert(A::template sites_within<gpt_neox::Sites>,
                  "this LoRA names a site GPT-NeoX does not have; GPT-NeoX's sites are Qkv, AttnOut, MlpUp, MlpDown");

    using config = Size;
    using adapter = A;
    static constexpr char const* family = "gpt_neox";
    static constexpr bool has_embedding_norm = false;
    static constexpr bool tied_head = false;
    static constexpr char const* embedding_name = "gpt_neox.embed_in";
    static constexpr char const* embedding_norm_name = "";
    static constexpr char const* final_norm_name = "gpt_neox.final_layer_norm";
    static constexpr char const* head_name = "embed_out";
    /// HF: rotary_ndims = int(head_size * rotary_pct).
    static constexpr int rotary_dim = int((Size::hidden / Size::heads) * Size::rotary_pct);

    template <class B, class T>
    struct Parts {
        using Backend = B;
        using Scalar = T;
        struct Options {
            double adapter_dropout = 0.0;
        };
        using Norm = LayerNorm<B, T, Size::hidden, base_role<A>>;
        using Attention = CausalSelfAttention<B, T,
                                              AttentionSpec{.hidden = Size::hidden,
                                                            .heads = Size::heads,
                                                            .kv_heads = Size::heads,
                                                            .layout = QkvLayout::FusedPerHead,
                                                            .positional = Positional::Rotary,
                                                            .rotary_dim = rotary_dim,
                                                            .bias = true},
                                              A>;
        using Mlp = GeluMlp<B, T, Size::hidden, 4 * Size::hidden, Gelu::Erf, A>;

        static std::string prefix(int i) { return "gpt_neox.layers." + std::to_string(i) + "."; }
        static Norm make_norm1(int i, Options const&) { return Norm(prefix(i) + "input_layernorm", Size::norm_eps); }
        static Norm make_norm2(int i, Options const&) {
            return Norm(prefix(i) + "post_attention_layernorm", Size::norm_eps);
        }
        static Attention make_attention(int i, Options const& o) {
            AttentionNames names;
            names.qkv = prefix(i) + "attention.query_key_value";
            names.out = prefix(i) + "attention.dense";
            return Attention(names, Size::init_std,
                             {.rope_base = Size::rope_base, .rope_style = RopeStyle::RotateHalf,
                              .adapter_dropout = o.adapter_dropout});
        }
        static Mlp make_mlp(int i, Options const& o) {
            return Mlp(prefix(i) + "mlp.dense_h_to_4h", prefix(i) + "mlp.dense_4h_to_h", Size::init_std,
                       o.adapter_dropout);
        }
    };
    template <class B, class T>
    using Block = ParallelBlock<Parts<B, T>>;

    using counted = Parts<CountingBackend, float>;
    /// Every weight: embed_in, blocks, final norm and the untied embed_out.
    static constexpr Index parameter_count = 2 * Index(Size::vocab) * Size::hidden + counted::Norm::parameter_count +
                                             Size::layers * Block<CountingBackend, float>::parameter_count;
    static constexpr Index adapter_parameter_count = Size::layers * Block<CountingBackend, float>::adapter_parameter_count;
};

}  // namespace polyalpaca
