/// @file models/bloom.hpp
/// @brief BLOOM as a type: word-embedding LayerNorm, ALiBi, fused per-head QKV, tanh-GELU MLP, tied head.
#pragma once

#include <string>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/backend/counting_backend.hpp"
#include "polyalpaca/layers/attention.hpp"
#include "polyalpaca/layers/mlp.hpp"
#include "polyalpaca/layers/norm.hpp"
#include "polyalpaca/layers/residual_block.hpp"

namespace polyalpaca {

namespace bloom {

/// Settings shared by every BLOOM size (HF BloomConfig defaults).
struct Defaults {
    static constexpr double norm_eps = 1e-5;
    static constexpr double init_std = 0.02;
    static constexpr int max_positions = 2048;  ///< ALiBi has no table; this is the pretraining length
};

// Sizes of the published checkpoints (bigscience/bloom-*); parameter counts are tested against the model cards.
struct Size560m : Defaults { static constexpr int vocab = 250880, hidden = 1024, layers = 24, heads = 16; };
struct Size1b1 : Defaults { static constexpr int vocab = 250880, hidden = 1536, layers = 24, heads = 16; };
struct Size1b7 : Defaults { static constexpr int vocab = 250880, hidden = 2048, layers = 24, heads = 16; };
struct Size3b : Defaults { static constexpr int vocab = 250880, hidden = 2560, layers = 30, heads = 32; };
struct Size7b1 : Defaults { static constexpr int vocab = 250880, hidden = 4096, layers = 30, heads = 32; };
/// For tests and the embedded default.
struct SizeTiny : Defaults { static constexpr int vocab = 96, hidden = 32, layers = 2, heads = 4; };
/// A small model with room for a 2k-token trained vocabulary: example-trainer tests and smoke runs.
struct SizeMini : Defaults { static constexpr int vocab = 2048, hidden = 64, layers = 2, heads = 4; };

using Sites = site::SiteList<site::Qkv, site::AttnOut, site::MlpUp, site::MlpDown>;

}  // namespace bloom

template <class Size, Adapter A = NoAdapter>
struct Bloom {
    static_assert(Size::hidden % Size::heads == 0, "the number of attention heads must divide the hidden size");
    static_assert(A::template sites_within<bloom::Sites>,
                  "this LoRA names a site BLOOM does not have; BLOOM's sites are Qkv, AttnOut, MlpUp, MlpDown");

    using config = Size;
    using adapter = A;
    static constexpr char const* family = "bloom";
    static constexpr bool has_embedding_norm = true;
    static constexpr bool tied_head = true;
    static constexpr char const* embedding_name = "transformer.word_embeddings";
    static constexpr char const* embedding_norm_name = "transformer.word_embeddings_layernorm";
    static constexpr char const* final_norm_name = "transformer.ln_f";
    static constexpr char const* head_name = "lm_head";

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
                                                            .positional = Positional::Alibi,
                                                            .bias = true},
                                              A>;
        using Mlp = GeluMlp<B, T, Size::hidden, 4 * Size::hidden, Gelu::Tanh, A>;

        static std::string prefix(int i) { return "transformer.h." + std::to_string(i) + "."; }
        static Norm make_norm1(int i, Options const&) { return Norm(prefix(i) + "input_layernorm", Size::norm_eps); }
        static Norm make_norm2(int i, Options const&) {
            return Norm(prefix(i) + "post_attention_layernorm", Size::norm_eps);
        }
        static Attention make_attention(int i, Options const& o) {
            AttentionNames names;
            names.qkv = prefix(i) + "self_attention.query_key_value";
            names.out = prefix(i) + "self_attention.dense";
            return Attention(names, Size::init_std, {.adapter_dropout = o.adapter_dropout});
        }
        static Mlp make_mlp(int i, Options const& o) {
            return Mlp(prefix(i) + "mlp.dense_h_to_4h", prefix(i) + "mlp.dense_4h_to_h", Size::init_std,
                       o.adapter_dropout);
        }
    };
    template <class B, class T>
    using Block = SequentialBlock<Parts<B, T>>;

    using counted = Parts<CountingBackend, float>;
    /// Every weight of the base model (the tied head counted once), as the model cards count them.
    static constexpr Index parameter_count = Index(Size::vocab) * Size::hidden + 2 * counted::Norm::parameter_count +
                                             Size::layers * Block<CountingBackend, float>::parameter_count;
    /// Weights the adapter adds (zero for full-parameter training).
    static constexpr Index adapter_parameter_count = Size::layers * Block<CountingBackend, float>::adapter_parameter_count;
};

}  // namespace polyalpaca
