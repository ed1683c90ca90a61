/// @file models/llama.hpp
/// @brief LLaMA as a type: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention, tied or untied head;
///        and llama::Hf, its HF config.json mapping, checkpoint names, parameter count and presets.
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

namespace llama {

/// Settings shared by the LLaMA-1 / OpenLLaMA sizes (HF LlamaConfig as those checkpoints set it).
struct Defaults {
    static constexpr double norm_eps = 1e-6;
    static constexpr double init_std = 0.02;
    static constexpr int max_positions = 2048;
    static constexpr double rope_base = 10000.0;
    /// RotateHalf for HF checkpoints; AdjacentPairs for Meta / llama2.c weights that were not permuted.
    static constexpr RopeStyle rope_style = RopeStyle::RotateHalf;
    static constexpr bool tied_head = false;
};

// Sizes of the published checkpoints; kv_heads = heads (no GQA) in all of them.
struct Size7b : Defaults {
    static constexpr int vocab = 32000, hidden = 4096, layers = 32, heads = 32, kv_heads = 32, ffn = 11008;
};
struct Size13b : Defaults {
    static constexpr int vocab = 32000, hidden = 5120, layers = 40, heads = 40, kv_heads = 40, ffn = 13824;
};
struct OpenLlama3b : Defaults {
    static constexpr int vocab = 32000, hidden = 3200, layers = 26, heads = 32, kv_heads = 32, ffn = 8640;
};
struct OpenLlama7b : Size7b {};
struct OpenLlama13b : Size13b {};
/// For tests and the embedded default: grouped-query (2 kv heads for 4 heads), untied head.
struct SizeTiny : Defaults {
    static constexpr int vocab = 96, hidden = 32, layers = 2, heads = 4, kv_heads = 2, ffn = 64;
};
/// SizeTiny with the head tied to the embedding.
struct SizeTinyTied : SizeTiny {
    static constexpr bool tied_head = true;
};
/// Karpathy's tinyllamas stories260K (llama2.c): grouped-query, head tied to the embedding, llama2.c's RMSNorm eps
/// and Meta's adjacent-pairs rotary layout (its q/k weights are not permuted).
struct Stories260K : Defaults {
    static constexpr int vocab = 512, hidden = 64, layers = 5, heads = 8, kv_heads = 4, ffn = 172;
    static constexpr double norm_eps = 1e-5;
    static constexpr int max_positions = 512;
    static constexpr RopeStyle rope_style = RopeStyle::AdjacentPairs;
    static constexpr bool tied_head = true;
};

using Sites =
    site::SiteList<site::Query, site::Key, site::Value, site::AttnOut, site::MlpGate, site::MlpUp, site::MlpDown>;

}  // namespace llama

template <class Size, Adapter A = NoAdapter>
struct Llama {
    static_assert(Size::hidden % Size::heads == 0, "the number of attention heads must divide the hidden size");
    static_assert(Size::heads % Size::kv_heads == 0,
                  "the number of kv heads must divide the number of attention heads (grouped-query attention)");
    static_assert(A::template sites_within<llama::Sites>,
                  "this adapter names a site LLaMA does not have; LLaMA's sites are Query, Key, Value, AttnOut, MlpGate, "
                  "MlpUp, MlpDown");

    using config = Size;
    using adapter = A;
    static constexpr char const* family = "llama";
    static constexpr bool has_embedding_norm = false;
    static constexpr bool tied_head = Size::tied_head;
    static constexpr int ffn = Size::ffn;
    static constexpr char const* embedding_name = "model.embed_tokens";
    static constexpr char const* embedding_norm_name = "";
    static constexpr char const* final_norm_name = "model.norm";
    static constexpr char const* head_name = "lm_head";

    template <class B, class T>
    struct Parts {
        using Backend = B;
        using Scalar = T;
        struct Options {
            double adapter_dropout = 0.0;
        };
        static constexpr int head_dim = Size::hidden / Size::heads;
        using Norm = RmsNorm<B, T, Size::hidden, base_role<A>>;
        using Attention = CausalSelfAttention<B, T,
                                              AttentionSpec{.hidden = Size::hidden,
                                                            .heads = Size::heads,
                                                            .kv_heads = Size::kv_heads,
                                                            .layout = QkvLayout::Separate,
                                                            .positional = Positional::Rotary,
                                                            .rotary_dim = head_dim,
                                                            .bias = false},
                                              A>;
        using Mlp = SwiGluMlp<B, T, Size::hidden, Size::ffn, A>;

        static std::string prefix(int i) { return "model.layers." + std::to_string(i) + "."; }
        static Norm make_norm1(int i, Options const&) { return Norm(prefix(i) + "input_layernorm", Size::norm_eps); }
        static Norm make_norm2(int i, Options const&) {
            return Norm(prefix(i) + "post_attention_layernorm", Size::norm_eps);
        }
        static Attention make_attention(int i, Options const& o) {
            AttentionNames names;
            names.q = prefix(i) + "self_attn.q_proj";
            names.k = prefix(i) + "self_attn.k_proj";
            names.v = prefix(i) + "self_attn.v_proj";
            names.out = prefix(i) + "self_attn.o_proj";
            return Attention(names, Size::init_std,
                             {.rope_base = Size::rope_base, .rope_style = Size::rope_style,
                              .adapter_dropout = o.adapter_dropout});
        }
        static Mlp make_mlp(int i, Options const& o) { return Mlp(prefix(i) + "mlp", Size::init_std, o.adapter_dropout); }
    };
    template <class B, class T>
    using Block = SequentialBlock<Parts<B, T>>;

    using counted = Parts<CountingBackend, float>;
    /// Every weight: embed_tokens, blocks, final norm and (when untied) lm_head.
    static constexpr Index parameter_count = Index(tied_head ? 1 : 2) * Size::vocab * Size::hidden +
                                             counted::Norm::parameter_count +
                                             Size::layers * Block<CountingBackend, float>::parameter_count;
    static constexpr Index adapter_parameter_count = Size::layers * Block<CountingBackend, float>::adapter_parameter_count;
};

namespace llama {

/// LLaMA's HF side: config.json (LlamaConfig), parameter count and presets, which io/ reads and writes checkpoints
/// by (models/families.hpp lists the families).
struct Hf {
    static constexpr std::string_view model_type = "llama";
    static constexpr char const* architecture = "LlamaForCausalLM";
    static constexpr char const* type_template = "polyalpaca::Llama";
    static constexpr char const* default_lora_sites = "polyalpaca::site::Query, polyalpaca::site::Value";
    /// PEFT's IA3 target modules (the feed-forward one included).
    static constexpr char const* default_ia3_sites =
        "polyalpaca::site::Key, polyalpaca::site::Value, polyalpaca::site::MlpDown";
    static constexpr char const* embedding_weight = "model.embed_tokens.weight";

    /// The fields of config.json `s` constrains (absent keys at LlamaConfig's defaults).
    static void config_fields(ModelSpec const& s, HfConfigReader& b) {
        b.add("vocab", {"vocab_size"}, s.vocab, 32000);
        b.add("hidden", {"hidden_size"}, s.hidden, 4096);
        b.add("layers", {"num_hidden_layers"}, s.layers, 32);
        b.add("heads", {"num_attention_heads"}, s.heads, 32);
        b.add("kv_heads", {"num_key_value_heads"}, s.kv_heads, b.found("heads"));
        nlohmann::json const hidden = b.found("hidden"), heads = b.found("heads");
        nlohmann::json head_dim = nullptr;
        if (hidden.is_number_integer() && heads.is_number_integer() && heads.get<std::int64_t>() > 0)
            head_dim = hidden.get<std::int64_t>() / heads.get<std::int64_t>();
        b.add("", {"head_dim"}, s.heads > 0 ? s.hidden / s.heads : 0, head_dim);
        b.add("ffn", {"intermediate_size"}, s.ffn, 11008);
        b.add("norm_eps", {"rms_norm_eps"}, s.norm_eps, 1e-6);
        b.add("rope_theta", {"rope_parameters.rope_theta", "rope_theta"}, s.rope_theta, 10000.0);
        b.add("rotary_pct", {"rope_parameters.partial_rotary_factor", "partial_rotary_factor"}, s.rotary_pct, 1.0);
        b.add("", {"rope_parameters.rope_type", "rope_scaling.rope_type", "rope_scaling.type"}, "default", "default");
        b.add("tied_head", {"tie_word_embeddings"}, s.tied_head, false);
        b.add("", {"hidden_act"}, "silu", "silu");
        b.add("", {"attention_bias"}, false, false);
        b.add("", {"mlp_bias"}, false, false);
        // Every HF LLaMA checkpoint rotates halves; a Meta-layout (adjacent pairs) model type cannot load one.
        b.fields.push_back(
            {"", "rope layout", s.rope_rotate_half ? "rotate-half" : "adjacent pairs (Meta)", "rotate-half", true});
    }
    static void complete(ModelSpec&) {}
    /// Weights of the base model: RMSNorms, no biases, grouped-query k and v, SwiGLU.
    static std::int64_t parameter_count(ModelSpec const& s) {
        std::int64_t const h = s.hidden, f = s.ffn;
        std::int64_t const kv = s.heads > 0 ? s.kv_heads * (h / s.heads) : 0;
        std::int64_t const block = 2 * h + 2 * h * h + 2 * h * kv + 3 * h * f;
        return (s.tied_head ? 1 : 2) * s.vocab * h + h + s.layers * block;
    }
    static void write_config(ModelSpec const& s, nlohmann::json& c) {
        c["num_hidden_layers"] = s.layers;
        c["num_attention_heads"] = s.heads;
        c["intermediate_size"] = s.ffn;
        c["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", s.rope_theta}};
        c["rope_theta"] = s.rope_theta;
        c["num_key_value_heads"] = s.kv_heads;
        c["head_dim"] = s.hidden / s.heads;
        c["rms_norm_eps"] = s.norm_eps;
        c["hidden_act"] = "silu";
        c["attention_bias"] = false;
        c["mlp_bias"] = false;
    }
    static std::vector<std::string> inexpressible(ModelSpec const&) { return {}; }
    /// A Size struct's integers for `s` after vocab, hidden, layers and heads, then its other members' lines.
    static std::string size_ints(ModelSpec const& s) {
        return ", kv_heads = " + std::to_string(s.kv_heads) + ", ffn = " + std::to_string(s.ffn);
    }
    static std::string size_members(ModelSpec const& s) {
        return "    static constexpr double norm_eps = " + cpp_double(s.norm_eps) + ", rope_base = " +
               cpp_double(s.rope_theta) + ";\n    static constexpr bool tied_head = " + (s.tied_head ? "true" : "false") +
               ";\n";
    }
    static std::string checkpoint_alias(std::string const&) { return ""; }
    static std::vector<Preset> presets() {
        return {{"llama-7b", spec_of<Llama<Size7b>>()},
                {"llama-13b", spec_of<Llama<Size13b>>()},
                {"open-llama-3b", spec_of<Llama<OpenLlama3b>>()},
                {"open-llama-7b", spec_of<Llama<OpenLlama7b>>()},
                {"open-llama-13b", spec_of<Llama<OpenLlama13b>>()},
                {"llama-tiny", spec_of<Llama<SizeTiny>>()},
                {"llama-tiny-tied", spec_of<Llama<SizeTinyTied>>()}};
    }
};

/// LLaMA's GGUF side, as llama.cpp's converter writes it (convert_hf_to_gguf.py, LlamaModel): the "llama"
/// architecture, q/k rows in Meta's interleaved rotary pairs.
struct Gguf {
    static constexpr std::string_view model_type = "llama";
    static constexpr char const* architecture = "llama";
    /// The block parameters: HF part, GGUF part, row order.
    static constexpr GgufBlockPart block_parts[] = {
        {"input_layernorm", "attn_norm"},
        {"self_attn.q_proj", "attn_q", GgufRows::RopeQuery},
        {"self_attn.k_proj", "attn_k", GgufRows::RopeKey},
        {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"},
        {"post_attention_layernorm", "ffn_norm"},
        {"mlp.gate_proj", "ffn_gate"},
        {"mlp.up_proj", "ffn_up"},
        {"mlp.down_proj", "ffn_down"},
    };

    static std::vector<GgufHyperparameter> hyperparameters(ModelSpec const& s, std::int64_t context_length) {
        auto u32 = [](std::int64_t v) { return std::uint32_t(v); };
        return {{"vocab_size", u32(s.vocab)},
                {"context_length", u32(context_length)},
                {"embedding_length", u32(s.hidden)},
                {"block_count", u32(s.layers)},
                {"feed_forward_length", u32(s.ffn)},
                {"attention.head_count", u32(s.heads)},
                {"attention.head_count_kv", u32(s.kv_heads)},
                {"rope.dimension_count", u32(s.hidden / s.heads)},
                {"attention.key_length", u32(s.hidden / s.heads)},
                {"attention.value_length", u32(s.hidden / s.heads)},
                {"rope.freq_base", float(s.rope_theta)},
                {"attention.layer_norm_rms_epsilon", float(s.norm_eps)}};
    }
    static std::int64_t context_length(nlohmann::json const& config) {
        return config.value("max_position_embeddings", 2048);
    }
    /// A checkpoint tensor the GGUF file leaves out: a tied head, older checkpoints' rotary buffers.
    static bool left_out(std::string_view hf, ModelSpec const& s) {
        return (hf == "lm_head.weight" && s.tied_head) || hf.ends_with(".rotary_emb.inv_freq");
    }
    static std::optional<GgufTensorPlace> tensor(std::string_view hf) {
        if (hf == "model.embed_tokens.weight") return GgufTensorPlace{"token_embd.weight"};
        if (hf == "model.norm.weight") return GgufTensorPlace{"output_norm.weight"};
        if (hf == "lm_head.weight") return GgufTensorPlace{"output.weight"};
        return gguf_block_place(hf, "model.layers.", block_parts);
    }
};

}  // namespace llama

}  // namespace polyalpaca
