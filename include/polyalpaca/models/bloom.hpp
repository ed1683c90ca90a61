/// @file models/bloom.hpp
/// @brief BLOOM as a type: word-embedding LayerNorm, ALiBi, fused per-head QKV, tanh-GELU MLP, tied head; and
///        bloom::Hf, its HF config.json mapping, checkpoint names, parameter count and presets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/backend/counting_backend.hpp"
#include "polyalpaca/layers/attention.hpp"
#include "polyalpaca/layers/mlp.hpp"
#include "polyalpaca/layers/norm.hpp"
#include "polyalpaca/layers/residual_block.hpp"
#include "polyalpaca/models/gguf_layout.hpp"
#include "polyalpaca/models/hf_config_fields.hpp"
#include "polyalpaca/models/model_spec.hpp"

namespace polyalpaca {

namespace bloom {

/// Settings shared by every BLOOM size (HF BloomConfig defaults). A Size may set `ffn`, the MLP width (default
/// 4 x hidden, the only width HF's BloomMLP has: another cannot be saved or loaded as an HF checkpoint).
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
                  "this adapter names a site BLOOM does not have; BLOOM's sites are Qkv, AttnOut, MlpUp, MlpDown");

    using config = Size;
    using adapter = A;
    static constexpr char const* family = "bloom";
    static constexpr bool has_embedding_norm = true;
    static constexpr bool tied_head = true;
    static constexpr char const* embedding_name = "transformer.word_embeddings";
    static constexpr char const* embedding_norm_name = "transformer.word_embeddings_layernorm";
    static constexpr char const* final_norm_name = "transformer.ln_f";
    static constexpr char const* head_name = "lm_head";
    static constexpr int ffn = [] {
        if constexpr (requires { Size::ffn; }) return Size::ffn;
        else return 4 * Size::hidden;
    }();

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
        using Mlp = GeluMlp<B, T, Size::hidden, ffn, Gelu::Tanh, A>;

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

namespace bloom {

/// BLOOM's HF side: config.json (BloomConfig), checkpoint names, parameter count and presets, which io/ reads and
/// writes checkpoints by (models/families.hpp lists the families).
struct Hf {
    static constexpr std::string_view model_type = "bloom";
    static constexpr char const* architecture = "BloomForCausalLM";
    static constexpr char const* type_template = "polyalpaca::Bloom";
    static constexpr char const* default_lora_sites = "polyalpaca::site::Qkv";  ///< PEFT's target modules
    /// PEFT's IA3 target modules (the feed-forward one included).
    static constexpr char const* default_ia3_sites =
        "polyalpaca::site::Qkv, polyalpaca::site::MlpDown";
    static constexpr char const* embedding_weight = "transformer.word_embeddings.weight";

    /// The fields of config.json `s` constrains (absent keys at BloomConfig's defaults).
    static void config_fields(ModelSpec const& s, HfConfigReader& b) {
        b.add("vocab", {"vocab_size"}, s.vocab, 250880);
        b.add("hidden", {"hidden_size", "n_embed"}, s.hidden, 64);
        b.add("layers", {"n_layer", "num_hidden_layers"}, s.layers, 2);
        b.add("heads", {"n_head", "num_attention_heads"}, s.heads, 8);
        b.add("norm_eps", {"layer_norm_epsilon"}, s.norm_eps, 1e-5);
        b.add("tied_head", {"tie_word_embeddings"}, s.tied_head, true);
        b.add("", {"apply_residual_connection_post_layernorm"}, false, false);
        nlohmann::json const hidden = b.found("hidden");  // HF's BloomMLP is 4 x hidden_size, with no key of its own
        b.fields.push_back({"", "MLP width (BloomMLP: 4 x hidden_size)", s.ffn,
                            hidden.is_number_integer() ? nlohmann::json(4 * hidden.get<std::int64_t>()) : hidden,
                            true});
    }
    /// What config.json leaves implicit: no grouped-query attention, the MLP 4 x hidden.
    static void complete(ModelSpec& s) {
        s.kv_heads = s.heads;
        s.ffn = 4 * s.hidden;
    }
    /// Weights of the base model (the tied head counted once): LayerNorms with bias, fused qkv with bias, the MLP
    /// with bias.
    static std::int64_t parameter_count(ModelSpec const& s) {
        return s.vocab * s.hidden + 4 * s.hidden + s.layers * biased_fused_block_parameters(s.hidden, s.ffn);
    }
    static void write_config(ModelSpec const& s, nlohmann::json& c) {
        require(s.ffn == 4 * s.hidden, "a BLOOM with an MLP ", s.ffn, " wide cannot be written as an HF checkpoint: "
                "HF's BloomMLP is 4 x hidden_size = ", 4 * s.hidden);
        c["n_layer"] = s.layers;
        c["n_head"] = s.heads;
        c["layer_norm_epsilon"] = s.norm_eps;
        c["apply_residual_connection_post_layernorm"] = false;
    }
    /// What a BLOOM config.json may say that no Bloom type expresses.
    static std::vector<std::string> inexpressible(ModelSpec const& s) {
        if (!s.tied_head) return {"tie_word_embeddings: BLOOM ties its head"};
        return {};
    }
    /// A Size struct's integers for `s` after vocab, hidden, layers and heads, then its other members' lines.
    static std::string size_ints(ModelSpec const&) { return ""; }
    static std::string size_members(ModelSpec const& s) {
        return "    static constexpr double norm_eps = " + cpp_double(s.norm_eps) + ";\n";
    }
    /// The other name a checkpoint may hold `name` under ("" for none): BLOOM's own files drop "transformer.".
    static std::string checkpoint_alias(std::string const& name) {
        std::string_view const prefix = "transformer.";
        return name.starts_with(prefix) ? name.substr(prefix.size()) : std::string();
    }
    static std::vector<Preset> presets() {
        return {{"bloom-560m", spec_of<Bloom<Size560m>>()}, {"bloom-1b1", spec_of<Bloom<Size1b1>>()},
                {"bloom-1b7", spec_of<Bloom<Size1b7>>()},   {"bloom-3b", spec_of<Bloom<Size3b>>()},
                {"bloom-7b1", spec_of<Bloom<Size7b1>>()},   {"bloom-tiny", spec_of<Bloom<SizeTiny>>()}};
    }
};

/// BLOOM's GGUF side, as llama.cpp's converter writes it (convert_hf_to_gguf.py, BloomModel): the "bloom"
/// architecture, q/k/v of the fused projection regrouped by kind, and no output tensor (llama.cpp ties it).
struct Gguf {
    static constexpr std::string_view model_type = "bloom";
    static constexpr char const* architecture = "bloom";
    /// The block parameters: HF part, GGUF part, row order.
    static constexpr GgufBlockPart block_parts[] = {
        {"input_layernorm", "attn_norm"},
        {"self_attention.query_key_value", "attn_qkv", GgufRows::FusedQkvByKind},
        {"self_attention.dense", "attn_output"},
        {"post_attention_layernorm", "ffn_norm"},
        {"mlp.dense_h_to_4h", "ffn_up"},
        {"mlp.dense_4h_to_h", "ffn_down"},
    };

    static std::vector<GgufHyperparameter> hyperparameters(ModelSpec const& s, std::int64_t context_length) {
        auto u32 = [](std::int64_t v) { return std::uint32_t(v); };
        return {{"context_length", u32(context_length)},
                {"embedding_length", u32(s.hidden)},
                {"feed_forward_length", u32(s.ffn)},
                {"block_count", u32(s.layers)},
                {"attention.head_count", u32(s.heads)},
                {"attention.head_count_kv", u32(s.heads)},
                {"attention.layer_norm_epsilon", float(s.norm_eps)}};
    }
    /// config.json's context length: BLOOM's have none (ALiBi has no table), so its pretraining length.
    static std::int64_t context_length(nlohmann::json const& config) { return config.value("seq_length", 2048); }
    /// A checkpoint tensor the GGUF file leaves out: the head, which llama.cpp ties to the embedding.
    static bool left_out(std::string_view hf, ModelSpec const&) { return hf == "lm_head.weight"; }
    /// The place of an HF tensor, under the model's name or BLOOM's own files' (without "transformer.").
    static std::optional<GgufTensorPlace> tensor(std::string_view hf) {
        if (!hf.starts_with("transformer.") && hf != "lm_head.weight") return tensor("transformer." + std::string(hf));
        if (hf == "transformer.word_embeddings.weight") return GgufTensorPlace{"token_embd.weight"};
        if (hf == "transformer.word_embeddings_layernorm.weight") return GgufTensorPlace{"token_embd_norm.weight"};
        if (hf == "transformer.word_embeddings_layernorm.bias") return GgufTensorPlace{"token_embd_norm.bias"};
        if (hf == "transformer.ln_f.weight") return GgufTensorPlace{"output_norm.weight"};
        if (hf == "transformer.ln_f.bias") return GgufTensorPlace{"output_norm.bias"};
        return gguf_block_place(hf, "transformer.h.", block_parts);
    }
};

}  // namespace bloom

}  // namespace polyalpaca
