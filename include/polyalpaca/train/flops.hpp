/// @file train/flops.hpp
/// @brief Training FLOPs per token of a model type (6 N_mm full, 4 N_mm + the adapter's own under an adapter, plus
///        attention).
#pragma once

#include <cstdint>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"
#include "polyalpaca/data/budget_cost.hpp"

namespace polyalpaca {

/// How the attention matmuls (Q K^T and P V, no weights) are counted per token at sequence length T.
enum class AttentionCount {
    /// 3 * (4 T d L) = 12 L T d: both matmuls over the full T x T square, forward and twice that backward
    /// (PERFORMANCE.md's convention; nanoGPT's estimate_mfu and PaLM appendix B count the same).
    FullSquare,
    /// 6 L T d: llm.c's gpt2_estimate_mfu term (Kaplan et al. 2.1); half the square, i.e. the causal triangle.
    LlmC,
};

struct FlopsOptions {
    std::int64_t seq_len = 512;  ///< T of the attention term (per-token figures only; budgets use each length)
    AttentionCount attention = AttentionCount::FullSquare;
    /// Share of tokens the LM head is computed for: 1 counts model FLOPs; the share of labelled tokens counts what
    /// polyalpaca's head (which skips -100 positions) does, e.g. 0.5 when half the tokens are prompt.
    double head_token_fraction = 1.0;
};

/// Weights that take part in matmuls. The head (vocab x hidden) counts once whether tied or not; an untied input
/// embedding is a lookup and counts zero; biases and norms are not matmul weights.
struct MatmulWeights {
    Index blocks = 0;   ///< attention and MLP projections of all layers
    Index head = 0;     ///< LM head
    Index adapter = 0;  ///< adapter parameters (LoRA A and B, DoRA's magnitudes, IA3's scales; 0 without)

    constexpr Index n_mm() const { return blocks + head; }
};

/// One token's training FLOPs at sequence length T, by part.
struct FlopsPerToken {
    MatmulWeights weights;
    bool frozen_base = false;  ///< under an adapter: the base weights need dX but no dW
    double blocks = 0.0;     ///< 6 (full) or 4 (adapter) x block weights
    double head = 0.0;       ///< 6 or 4 x head weights x head_token_fraction
    double adapters = 0.0;   ///< the adapter policy's own FLOPs per adapted projection (LoRA: 6 x its weights)
    double attention = 0.0;  ///< 12 L T d (full square) or 6 L T d (llm.c)

    double total() const { return blocks + head + adapters + attention; }
};

namespace detail {
template <class L>
constexpr Index linear_weights() {
    return Index(L::in_features) * Index(L::out_features);
}
template <class Attention>
constexpr Index attention_weights() {
    if constexpr (Attention::fused) {
        return linear_weights<typename Attention::Qkv>() + linear_weights<typename Attention::Out>();
    } else {
        return linear_weights<typename Attention::Query>() + linear_weights<typename Attention::Key>() +
               linear_weights<typename Attention::Value>() + linear_weights<typename Attention::Out>();
    }
}
template <class Attention>
constexpr double attention_adapter_flops() {
    if constexpr (Attention::fused) {
        return Attention::Qkv::adapter_flops_per_token + Attention::Out::adapter_flops_per_token;
    } else {
        return Attention::Query::adapter_flops_per_token + Attention::Key::adapter_flops_per_token +
               Attention::Value::adapter_flops_per_token + Attention::Out::adapter_flops_per_token;
    }
}
template <class Mlp>
constexpr double mlp_adapter_flops() {
    double f = Mlp::Up::adapter_flops_per_token + Mlp::Down::adapter_flops_per_token;
    if constexpr (requires { typename Mlp::Gate; }) f += Mlp::Gate::adapter_flops_per_token;
    return f;
}
template <class Mlp>
constexpr Index mlp_weights() {
    Index n = linear_weights<typename Mlp::Up>() + linear_weights<typename Mlp::Down>();
    if constexpr (requires { typename Mlp::Gate; }) n += linear_weights<typename Mlp::Gate>();
    return n;
}
}  // namespace detail

/// N_mm of a model type (Bloom, GptNeoX, Llama with any Size and adapter), read from its layer types.
template <class Model>
constexpr MatmulWeights matmul_weights() {
    using Parts = typename Model::counted;
    using Size = typename Model::config;
    MatmulWeights w;
    w.blocks = Index(Size::layers) *
               (detail::attention_weights<typename Parts::Attention>() + detail::mlp_weights<typename Parts::Mlp>());
    w.head = Index(Size::vocab) * Index(Size::hidden);
    w.adapter = Model::adapter_parameter_count;
    return w;
}

/// Training FLOPs per token. Full: 6 N_mm (forward 2, backward 2 for dX and 2 for dW). LoRA: 4 N_mm, as frozen
/// weights need dX but no dW, plus 6 per adapter weight (the adapters train, so they pay forward, dX and dW like any
/// trained weight; PERFORMANCE.md section 4.1). Attention as `options.attention` says, the same for both (it has no
/// weights; its backward is twice its forward either way).
template <class Model>
FlopsPerToken flops_per_token(FlopsOptions const& options = {}) {
    require(options.seq_len > 0, "FLOPs per token need a positive sequence length, got ", options.seq_len);
    require(options.head_token_fraction >= 0.0 && options.head_token_fraction <= 1.0,
            "head_token_fraction must be in [0, 1], got ", options.head_token_fraction);
    using Size = typename Model::config;
    FlopsPerToken f;
    f.weights = matmul_weights<Model>();
    f.frozen_base = !Model::adapter::trains_base;
    double const per_weight = f.frozen_base ? 4.0 : 6.0;
    f.blocks = per_weight * double(f.weights.blocks);
    f.head = per_weight * double(f.weights.head) * options.head_token_fraction;
    using Parts = typename Model::counted;
    f.adapters = double(Size::layers) * (detail::attention_adapter_flops<typename Parts::Attention>() +
                                         detail::mlp_adapter_flops<typename Parts::Mlp>());
    double const square = options.attention == AttentionCount::FullSquare ? 12.0 : 6.0;
    f.attention = square * double(Size::layers) * double(options.seq_len) * double(Size::hidden);
    return f;
}

/// The FlopCost budgets use: per token everything but attention, per (query, key) pair 12 L d (or 6 L d), so a
/// sequence of n tokens costs n * per_token + n^2 * per_token_pair. options.seq_len is not used.
template <class Model>
FlopCost flop_cost(FlopsOptions const& options = {}) {
    FlopsPerToken const f = flops_per_token<Model>(FlopsOptions{1, options.attention, options.head_token_fraction});
    return FlopCost{f.blocks + f.head + f.adapters, f.attention};
}

}  // namespace polyalpaca
