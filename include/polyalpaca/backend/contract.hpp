/// @file backend/contract.hpp
/// @brief The backend contract (docs/backend_ops.md) as concepts, one per group of ops, and the check CausalLm
///        makes of its backend: a backend that lacks an op is told so in one sentence per group, naming the ops and
///        their signatures, instead of through errors deep inside a layer's forward or backward.
///
/// Ops are free functions found by argument-dependent lookup on the backend's Context, as the layers call them.
/// The optimizer's ops (adamw_update, squared_norm, scale) are checked where the optimizer is instantiated.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::backend_contract {

/// The policy's own members: its Context, owning Buffer<T> and the host transfers.
template <class B, class T>
concept Memory = requires(typename B::Context& c, T const* from, T* to, std::size_t n) {
    typename B::template Buffer<T>;
    { B::name } -> std::convertible_to<char const*>;
    B::lm_head_chunk_logits;
    B::upload(c, from, to, n);
    B::download(c, from, to, n);
    B::fill_zero(c, to, n);
    B::copy(c, from, to, n);
    B::synchronize(c);
};

template <class B, class T>
concept Embedding = requires(typename B::Context& c, std::span<std::int32_t const> ids, View<T const> in, View<T> out) {
    embedding_forward(c, ids, in, out);
    embedding_backward(c, ids, in, out);
};

template <class B, class T>
concept Linear = requires(typename B::Context& c, View<T const> in, View<T> out, T const* bias, T* dbias) {
    linear_forward(c, in, in, bias, out, false);
    linear_backward(c, in, in, in, out, out, dbias);
};

template <class B, class T>
concept LayerNorm = requires(typename B::Context& c, View<T const> in, View<T> out, T const* p, T* q, T eps) {
    layer_norm_forward(c, in, p, p, eps, out, q, q);
    add_layer_norm_forward(c, in, in, p, p, eps, out, out, q, q);
    layer_norm_backward(c, in, in, p, p, p, out, q, q);
};

template <class B, class T>
concept RmsNorm = requires(typename B::Context& c, View<T const> in, View<T> out, T const* p, T* q, T eps) {
    rms_norm_forward(c, in, p, eps, out, q);
    add_rms_norm_forward(c, in, in, p, eps, out, out, q);
    rms_norm_backward(c, in, in, p, p, out, q);
};

template <class B, class T>
concept Activations = requires(typename B::Context& c, View<T const> in, View<T> out) {
    gelu_tanh_forward(c, in, out);
    gelu_tanh_backward(c, in, in, out);
    gelu_erf_forward(c, in, out);
    gelu_erf_backward(c, in, in, out);
    swiglu_forward(c, in, in, out);
    swiglu_backward(c, in, in, in, out, out);
    add(c, in, in, out);
    accumulate(c, in, out);
};

template <class B, class T>
concept Dropout = requires(typename B::Context& c, View<T const> in, View<T> out, T p, Rng& rng) {
    dropout_forward(c, in, out, out, p, rng);
    dropout_backward(c, in, in, out);
};

template <class B, class T>
concept Scaling = requires(typename B::Context& c, View<T const> in, T const* v, View<T> out, T* vout, Index n) {
    scale_columns(c, in, v, v, out);
    column_dots(c, in, in, vout);
    row_norms(c, in, vout);
    divide(c, v, v, vout, n);
};

template <class B, class T>
concept Rope = requires(typename B::Context& c, View<T> x, RopeSpec const& spec) {
    rope_forward(c, x, 1, 0, spec);
    rope_backward(c, x, 1, 0, spec);
};

template <class B, class T>
concept Attention = requires(typename B::Context& c, View<T const> in, View<T> out, AttentionShape const& shape,
                             T const* slopes, T scale) {
    { attention_state_cols(c, shape) } -> std::convertible_to<Index>;
    attention_forward(c, in, in, in, out, out, shape, slopes, scale);
    attention_backward(c, in, in, in, in, in, out, out, out, shape, scale);
    split_fused_qkv(c, in, out, out, out, 1, 1);
    merge_fused_qkv(c, in, in, in, out, 1, 1);
};

template <class B, class T>
concept Loss = requires(typename B::Context& c, View<T const> in, View<T> out, std::span<std::int32_t const> rows,
                        T scale) {
    { cross_entropy(c, in, rows, -100, out, scale) } -> std::convertible_to<LossSum>;
    gather_rows(c, in, rows, out);
    scatter_add_rows(c, in, rows, out);
};

template <class B, class T>
concept Decoding = requires(typename B::Context& c, View<T const> in, View<T> out, std::span<CachedSequence const> seqs,
                            std::span<Index const> indices, std::span<int const> lengths, T const* slopes, T scale) {
    kv_cache_write(c, in, out, seqs);
    kv_cache_gather(c, out, indices, indices, lengths);
    attention_decode(c, in, in, in, out, seqs, 1, 1, 1, slopes, scale);
};

/// One static_assert per group, each a sentence naming what is missing (and nothing else: it returns true, so the
/// caller's own static_assert adds no line of its own).
template <class B, class T>
constexpr bool check() {
    static_assert(Memory<B, T>, "the backend policy lacks a member of the contract (docs/backend_ops.md): "
                                "Context, Buffer<T>, name, lm_head_chunk_logits, upload, download, fill_zero, copy, "
                                "synchronize");
    static_assert(Embedding<B, T>, "the backend lacks embedding_forward(ctx, ids, table, out) or "
                                   "embedding_backward(ctx, ids, dout, dtable) (docs/backend_ops.md)");
    static_assert(Linear<B, T>, "the backend lacks linear_forward(ctx, x, w, bias, y, accumulate) or "
                                "linear_backward(ctx, x, w, dy, dx, dw, dbias) (docs/backend_ops.md)");
    static_assert(LayerNorm<B, T>, "the backend lacks layer_norm_forward, add_layer_norm_forward or "
                                   "layer_norm_backward (docs/backend_ops.md)");
    static_assert(RmsNorm<B, T>, "the backend lacks rms_norm_forward, add_rms_norm_forward or rms_norm_backward "
                                 "(docs/backend_ops.md)");
    static_assert(Activations<B, T>, "the backend lacks one of gelu_tanh_forward/backward, gelu_erf_forward/backward, "
                                     "swiglu_forward/backward, add, accumulate (docs/backend_ops.md)");
    static_assert(Dropout<B, T>, "the backend lacks dropout_forward(ctx, x, y, mask, p, rng) or "
                                 "dropout_backward(ctx, dy, mask, dx) (docs/backend_ops.md)");
    static_assert(Scaling<B, T>, "the backend lacks one of scale_columns(ctx, x, v, shift, y), "
                                 "column_dots(ctx, a, b, out), row_norms(ctx, m, out), divide(ctx, a, b, out, n) "
                                 "(docs/backend_ops.md)");
    static_assert(Rope<B, T>, "the backend lacks rope_forward or rope_backward(ctx, x, seq, position_offset, spec) "
                              "(docs/backend_ops.md)");
    static_assert(Attention<B, T>, "the backend lacks one of attention_state_cols, attention_forward, "
                                   "attention_backward, split_fused_qkv, merge_fused_qkv (docs/backend_ops.md)");
    static_assert(Loss<B, T>, "the backend lacks cross_entropy(ctx, logits, targets, ignore_index, dlogits, "
                              "grad_scale), gather_rows or scatter_add_rows (docs/backend_ops.md)");
    static_assert(Decoding<B, T>, "the backend lacks kv_cache_write, kv_cache_gather or attention_decode "
                                  "(docs/backend_ops.md)");
    return true;
}

}  // namespace polyalpaca::backend_contract
