/// @file models/gpt_neox.hpp
/// @brief GPT-NeoX (Pythia) as a type: parallel (or sequential) attention + MLP residual, partial rotary, erf-GELU,
///        untied head; and gpt_neox::Hf, its HF config.json mapping, checkpoint names, parameter count and presets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
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

namespace gpt_neox {

/// Settings shared by every Pythia size (HF GPTNeoXConfig as the Pythia checkpoints set it). A Size may also set
/// `ffn`, the MLP width (intermediate_size; default 4 x hidden, as every Pythia).
struct Defaults {
    static constexpr double norm_eps = 1e-5;
    static constexpr double init_std = 0.02;
    static constexpr int max_positions = 2048;
    static constexpr double rotary_pct = 0.25;
    static constexpr double rope_base = 10000.0;
    /// use_parallel_residual: x + attention(ln1(x)) + mlp(ln2(x)) (Pythia); false: the sequential pre-norm block,
    /// h = x + attention(ln1(x)), h + mlp(ln2(h)).
    static constexpr bool parallel_residual = true;
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
/// SizeTiny with a sequential residual and an MLP 3 x hidden wide (tests: the golden gpt_neox_sequential).
struct SizeTinySequential : SizeTiny {
    static constexpr int ffn = 96;
    static constexpr bool parallel_residual = false;
};

using Sites = site::SiteList<site::Qkv, site::AttnOut, site::MlpUp, site::MlpDown>;

}  // namespace gpt_neox

template <class Size, Adapter A = NoAdapter>
struct GptNeoX {
    static_assert(Size::hidden % Size::heads == 0, "the number of attention heads must divide the hidden size");
    static_assert(A::template sites_within<gpt_neox::Sites>,
                  "this adapter names a site GPT-NeoX does not have; GPT-NeoX's sites are Qkv, AttnOut, MlpUp, MlpDown");

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
                                                            .positional = Positional::Rotary,
                                                            .rotary_dim = rotary_dim,
                                                            .bias = true},
                                              A>;
        using Mlp = GeluMlp<B, T, Size::hidden, ffn, Gelu::Erf, A>;

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
    using Block = std::conditional_t<Size::parallel_residual, ParallelBlock<Parts<B, T>>, SequentialBlock<Parts<B, T>>>;

    using counted = Parts<CountingBackend, float>;
    /// Every weight: embed_in, blocks, final norm and the untied embed_out.
    static constexpr Index parameter_count = 2 * Index(Size::vocab) * Size::hidden + counted::Norm::parameter_count +
                                             Size::layers * Block<CountingBackend, float>::parameter_count;
    static constexpr Index adapter_parameter_count = Size::layers * Block<CountingBackend, float>::adapter_parameter_count;
};

namespace gpt_neox {

/// GPT-NeoX's HF side: config.json (GPTNeoXConfig), parameter count and presets, which io/ reads and writes
/// checkpoints by (models/families.hpp lists the families).
struct Hf {
    static constexpr std::string_view model_type = "gpt_neox";
    static constexpr char const* architecture = "GPTNeoXForCausalLM";
    static constexpr char const* type_template = "polyalpaca::GptNeoX";
    static constexpr char const* default_lora_sites = "polyalpaca::site::Qkv";  ///< PEFT's target modules
    /// PEFT's IA3 target modules (the feed-forward one included).
    static constexpr char const* default_ia3_sites =
        "polyalpaca::site::Qkv, polyalpaca::site::MlpDown";
    static constexpr char const* embedding_weight = "gpt_neox.embed_in.weight";

    /// The fields of config.json `s` constrains (absent keys at GPTNeoXConfig's defaults).
    static void config_fields(ModelSpec const& s, HfConfigReader& b) {
        b.add("vocab", {"vocab_size"}, s.vocab, 50432);
        b.add("hidden", {"hidden_size"}, s.hidden, 6144);
        b.add("layers", {"num_hidden_layers"}, s.layers, 44);
        b.add("heads", {"num_attention_heads"}, s.heads, 64);
        b.add("ffn", {"intermediate_size"}, s.ffn, 24576);
        b.add("rotary_pct", {"rope_parameters.partial_rotary_factor", "partial_rotary_factor", "rotary_pct"},
              s.rotary_pct, 0.25);
        b.add("rope_theta", {"rope_parameters.rope_theta", "rope_theta", "rotary_emb_base"}, s.rope_theta, 10000.0);
        b.add("", {"rope_parameters.rope_type", "rope_scaling.rope_type", "rope_scaling.type"}, "default", "default");
        b.add("norm_eps", {"layer_norm_eps"}, s.norm_eps, 1e-5);
        b.add("parallel_residual", {"use_parallel_residual"}, s.parallel_residual, true);
        b.add("tied_head", {"tie_word_embeddings"}, s.tied_head, false);
        b.add("", {"hidden_act"}, "gelu", "gelu");
        b.add("", {"attention_bias"}, true, true);
    }
    /// What config.json leaves implicit: no grouped-query attention.
    static void complete(ModelSpec& s) { s.kv_heads = s.heads; }
    /// Weights of the base model: as BLOOM's blocks, plus an untied embed_out, no embedding norm.
    static std::int64_t parameter_count(ModelSpec const& s) {
        return 2 * s.vocab * s.hidden + 2 * s.hidden + s.layers * biased_fused_block_parameters(s.hidden, s.ffn);
    }
    static void write_config(ModelSpec const& s, nlohmann::json& c) {
        c["num_hidden_layers"] = s.layers;
        c["num_attention_heads"] = s.heads;
        c["intermediate_size"] = s.ffn;
        c["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", s.rope_theta},
                                {"partial_rotary_factor", s.rotary_pct}};
        c["rope_theta"] = s.rope_theta;
        c["rotary_pct"] = s.rotary_pct;
        c["rotary_emb_base"] = s.rope_theta;
        c["layer_norm_eps"] = s.norm_eps;
        c["use_parallel_residual"] = s.parallel_residual;
        c["hidden_act"] = "gelu";
        c["attention_bias"] = true;
    }
    /// What a GPT-NeoX config.json may say that no GptNeoX type expresses.
    static std::vector<std::string> inexpressible(ModelSpec const& s) {
        if (s.tied_head) return {"tie_word_embeddings: GPT-NeoX here has an untied head"};
        return {};
    }
    /// A Size struct's integers for `s` after vocab, hidden, layers and heads, then its other members' lines.
    static std::string size_ints(ModelSpec const&) { return ""; }
    static std::string size_members(ModelSpec const& s) {
        std::string out = "    static constexpr double norm_eps = " + cpp_double(s.norm_eps) +
                          ", rotary_pct = " + cpp_double(s.rotary_pct) + ", rope_base = " + cpp_double(s.rope_theta) +
                          ";\n";
        if (s.ffn != 4 * s.hidden) out += "    static constexpr int ffn = " + std::to_string(s.ffn) + ";\n";
        if (!s.parallel_residual) out += "    static constexpr bool parallel_residual = false;\n";
        return out;
    }
    static std::string checkpoint_alias(std::string const&) { return ""; }
    static std::vector<Preset> presets() {
        return {{"pythia-70m", spec_of<GptNeoX<Size70m>>()},   {"pythia-160m", spec_of<GptNeoX<Size160m>>()},
                {"pythia-410m", spec_of<GptNeoX<Size410m>>()}, {"pythia-1b", spec_of<GptNeoX<Size1b>>()},
                {"pythia-1.4b", spec_of<GptNeoX<Size1b4>>()},  {"pythia-2.8b", spec_of<GptNeoX<Size2b8>>()},
                {"pythia-6.9b", spec_of<GptNeoX<Size6b9>>()},  {"pythia-12b", spec_of<GptNeoX<Size12b>>()},
                {"gpt-neox-tiny", spec_of<GptNeoX<SizeTiny>>()},
                {"gpt-neox-tiny-sequential", spec_of<GptNeoX<SizeTinySequential>>()}};
    }
};

/// GPT-NeoX's GGUF side, as llama.cpp's converter writes it (convert_hf_to_gguf.py, GPTNeoXModel): the "gptneox"
/// architecture, q/k/v of the fused projection regrouped by kind, the rotary width and the residual form.
struct Gguf {
    static constexpr std::string_view model_type = "gpt_neox";
    static constexpr char const* architecture = "gptneox";
    /// The block parameters: HF part, GGUF part, row order.
    static constexpr GgufBlockPart block_parts[] = {
        {"input_layernorm", "attn_norm"},
        {"attention.query_key_value", "attn_qkv", GgufRows::FusedQkvByKind},
        {"attention.dense", "attn_output"},
        {"post_attention_layernorm", "ffn_norm"},
        {"mlp.dense_h_to_4h", "ffn_up"},
        {"mlp.dense_4h_to_h", "ffn_down"},
    };

    static std::vector<GgufHyperparameter> hyperparameters(ModelSpec const& s, std::int64_t context_length) {
        auto u32 = [](std::int64_t v) { return std::uint32_t(v); };
        std::vector<GgufHyperparameter> out{
            {"context_length", u32(context_length)},
            {"embedding_length", u32(s.hidden)},
            {"block_count", u32(s.layers)},
            {"feed_forward_length", u32(s.ffn)},
            {"rope.dimension_count", u32(std::int64_t(s.rotary_pct * double(s.hidden / s.heads)))},
            {"attention.head_count", u32(s.heads)},
            {"use_parallel_residual", s.parallel_residual},
            {"attention.layer_norm_epsilon", float(s.norm_eps)}};
        // The converter leaves the base out (Pythia's is llama.cpp's default, 10000); another must be written.
        if (s.rope_theta != 10000.0) out.push_back({"rope.freq_base", float(s.rope_theta)});
        return out;
    }
    static std::int64_t context_length(nlohmann::json const& config) {
        return config.value("max_position_embeddings", 2048);
    }
    /// A checkpoint tensor the GGUF file leaves out: older checkpoints' attention mask and rotary buffers.
    static bool left_out(std::string_view hf, ModelSpec const&) {
        return hf.ends_with(".attention.bias") || hf.ends_with(".attention.masked_bias") ||
               hf.ends_with(".rotary_emb.inv_freq");
    }
    static std::optional<GgufTensorPlace> tensor(std::string_view hf) {
        if (hf == "gpt_neox.embed_in.weight") return GgufTensorPlace{"token_embd.weight"};
        if (hf == "gpt_neox.final_layer_norm.weight") return GgufTensorPlace{"output_norm.weight"};
        if (hf == "gpt_neox.final_layer_norm.bias") return GgufTensorPlace{"output_norm.bias"};
        if (hf == "embed_out.weight") return GgufTensorPlace{"output.weight"};
        return gguf_block_place(hf, "gpt_neox.layers.", block_parts);
    }
};

}  // namespace gpt_neox

}  // namespace polyalpaca
