/// @file backend/cpu/linear.hpp
/// @brief Dense layer y = x W^T + b with HF (out, in) weights, as oneDNN's matmuls (fp32 where the build has oneDNN,
///        and GemmMath::Bf16) or Eigen's products.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/bf16_gemm.hpp"
#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {
/// Calls with at most this many rows (incremental decoding) take dot products instead of a GEMM: a GEMM over so
/// few rows spends most of its time packing the whole weight matrix on every call, while the dot products read
/// each weight row once for all rows.
inline constexpr Index linear_few_rows = 8;

/// In GemmMath::Bf16, products with every side at least this long run on bf16 operands; thinner ones (a LoRA
/// rank of 8) stay fp32: their conversions would cost more than the bf16 units save.
inline constexpr Index bf16_min_side = 16;

/// True when an (m, k) x (k, n) product is long enough on every side for bf16 operands (the sizing backend asks too).
inline bool bf16_shape(Index m, Index k, Index n) { return std::min({m, k, n}) >= bf16_min_side; }

/// True when an (m, k) x (k, n) product runs on bf16 operands: ctx in GemmMath::Bf16 and every side long enough.
inline bool bf16_product(Context const& ctx, Index m, Index k, Index n) {
    return ctx.gemm_math() == GemmMath::Bf16 && bf16_shape(m, k, n);
}

/// An activation (rows, cols) rounded to bf16 in `frame`, as op(a) itself or (`transposed`) as its transpose.
template <class Frame>
Bf16Operand bf16_activation(Context& ctx, Frame& frame, View<float const> v, bool transposed = false) {
    auto rounded = frame.template take<std::uint16_t>(v.rows, v.cols);
    round_to_bf16(ctx.threads, v.data, rounded.data, v.size());
    return transposed ? Bf16Operand{rounded.data, v.cols, v.rows, true} : Bf16Operand{rounded.data, v.rows, v.cols};
}

/// A weight (Out, In) from its bf16 working copy, as op(b) = W (`transposed` false) or W^T.
inline Bf16Operand bf16_weight(Context& ctx, View<float const> w, bool transposed) {
    auto const* copy = ctx.bf16_gemms().weight(ctx.threads, w.data, std::size_t(w.size()));
    return transposed ? Bf16Operand{copy, w.cols, w.rows, true} : Bf16Operand{copy, w.rows, w.cols};
}

/// OpenBLAS runs a product of fewer multiply-adds than this on the calling thread (its SMP_THRESHOLD_MIN times
/// GEMM_MULTITHREAD_THRESHOLD), and starts its own threads for larger ones.
inline constexpr double openblas_threaded_work = double(Index(1) << 18);

/// True when an fp32 (m, k) x (k, n) product runs on oneDNN's matmul, in a build with it: every product with all
/// sides of at least bf16_min_side, and a thinner one (a LoRA rank of 8) that OpenBLAS would run on its own threads,
/// so that a step runs on one pool of threads, OpenMP's. OpenBLAS (the pthread build Debian installs) keeps its
/// threads spinning after each call, and they took the cores from the OpenMP regions that followed: BLOOM-560m's
/// fp32 steps ran 1.3-1.7x slower on OpenBLAS than on oneDNN, whose JIT kernels also run most of these shapes 1.2x
/// faster (docs/performance.md, "One pool of threads"). Small thin products stay with Eigen: on oneDNN each new
/// shape costs a primitive, and the embedded study's LoRA runs, whose rows change with every batch, took 20% longer.
inline bool onednn_fp32_product(Index m, Index k, Index n) {
    if (!fp32_gemms_by_onednn) return false;
    return bf16_shape(m, k, n) ||
           (std::max({m, k, n}) >= bf16_min_side && double(m) * double(k) * double(n) > openblas_threaded_work);
}

/// y (+)= x W^T, dx += dy W and dW += dy^T x on fp32 operands by oneDNN; an output with no data is skipped.
inline void onednn_linear_forward(Context& ctx, View<float const> x, View<float const> w, View<float> y,
                                  bool accumulate) {
    ctx.fp32_matmuls().multiply(OneDnnMatmuls::Operands::f32, {x.data, x.rows, x.cols},
                                {w.data, w.cols, w.rows, true}, y.data, accumulate);
}
inline void onednn_linear_backward(Context& ctx, View<float const> x, View<float const> w, View<float const> dy,
                                   View<float> dx, View<float> dw) {
    auto& matmuls = ctx.fp32_matmuls();
    if (dx.data != nullptr)
        matmuls.multiply(OneDnnMatmuls::Operands::f32, {dy.data, dy.rows, dy.cols}, {w.data, w.rows, w.cols},
                         dx.data, true);
    if (dw.data != nullptr)
        matmuls.multiply(OneDnnMatmuls::Operands::f32, {dy.data, dy.cols, dy.rows, true}, {x.data, x.rows, x.cols},
                         dw.data, true);
}

/// y (+)= x W^T on bf16 operands.
inline void bf16_linear_forward(Context& ctx, View<float const> x, View<float const> w, View<float> y,
                                bool accumulate) {
    ScratchFrame frame(ctx.temporaries);
    ctx.bf16_gemms().multiply(bf16_activation(ctx, frame, x), bf16_weight(ctx, w, true), y.data, accumulate);
}

/// dx += dy W and dW += dy^T x on bf16 operands (dy rounded once for both); an output with no data is skipped.
inline void bf16_linear_backward(Context& ctx, View<float const> x, View<float const> w, View<float const> dy,
                                 View<float> dx, View<float> dw) {
    ScratchFrame frame(ctx.temporaries);
    auto const dy16 = bf16_activation(ctx, frame, dy);
    if (dx.data != nullptr) ctx.bf16_gemms().multiply(dy16, bf16_weight(ctx, w, false), dx.data, true);
    if (dw.data != nullptr) {
        Bf16Operand const dy16_t{dy16.data, dy.cols, dy.rows, true};
        ctx.bf16_gemms().multiply(dy16_t, bf16_activation(ctx, frame, x), dw.data, true);
    }
}
}  // namespace detail

/// y = x W^T + b, or y += x W^T + b when `accumulate`. bias may be nullptr. y must not alias x or w.
/// T is deduced from `y`; x and w convert from mutable views.
template <class T>
void linear_forward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> w,
                    std::type_identity_t<T const*> bias, View<T> y, bool accumulate = false) {
    require(!x.empty(), "linear_forward: x is empty");
    require(!w.empty(), "linear_forward: w is empty");
    Index const n = x.rows;
    Index const out_features = w.rows;
    require_shape(w, out_features, x.cols, "linear_forward: w");  // (Out, In)
    require_shape(y, n, out_features, "linear_forward: y");       // (N, Out)
    require(y.data != nullptr, "linear_forward: y has no data");

    if (n <= detail::linear_few_rows) {
        auto const xm = x.map();  // (N, In)
        auto const wm = w.map();  // (Out, In)
        [[maybe_unused]] bool const parallel = out_features * x.cols * n >= (Index(1) << 18);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (parallel)
        for (Index o = 0; o < out_features; ++o) {
            for (Index r = 0; r < n; ++r) {
                T const v = wm.row(o).dot(xm.row(r)) + (bias != nullptr ? bias[o] : T(0));
                y.row(r)[o] = accumulate ? y.row(r)[o] + v : v;
            }
        }
        return;
    }
    auto ym = y.map();
    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
        if (detail::bf16_product(ctx, n, x.cols, out_features)) {
            detail::bf16_linear_forward(ctx, x, w, y, accumulate);
            done = true;
        } else if (detail::onednn_fp32_product(n, x.cols, out_features)) {
            detail::onednn_linear_forward(ctx, x, w, y, accumulate);
            done = true;
        }
    }
    if (!done && accumulate)
        ym.noalias() += x.map() * w.map().transpose();
    else if (!done)
        ym.noalias() = x.map() * w.map().transpose();
    if (bias != nullptr) ym.rowwise() += Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic> const>(bias, out_features);
}

/// dx += dy W, dw += dy^T x, dbias += column sums of dy. Each output is skipped when its data is nullptr.
/// T is deduced from dx and dw; at least one of them must be a typed View<T> (or call linear_backward<T>).
template <class T>
void linear_backward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> w,
                     std::type_identity_t<View<T const>> dy, View<T> dx, View<T> dw, std::type_identity_t<T*> dbias) {
    require(!x.empty(), "linear_backward: x is empty");
    require(!w.empty(), "linear_backward: w is empty");
    Index const n = x.rows;
    Index const in_features = x.cols;
    Index const out_features = w.rows;
    require_shape(w, out_features, in_features, "linear_backward: w");  // (Out, In)
    require_shape(dy, n, out_features, "linear_backward: dy");          // (N, Out)
    require(dy.data != nullptr, "linear_backward: dy has no data");

    if (dx.data != nullptr) require_shape(dx, n, in_features, "linear_backward: dx");             // (N, In)
    if (dw.data != nullptr) require_shape(dw, out_features, in_features, "linear_backward: dw");  // (Out, In)

    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
        if (detail::bf16_product(ctx, n, in_features, out_features)) {
            detail::bf16_linear_backward(ctx, x, w, dy, dx, dw);
            done = true;
        } else if (detail::onednn_fp32_product(n, in_features, out_features)) {
            detail::onednn_linear_backward(ctx, x, w, dy, dx, dw);
            done = true;
        }
    }
    if (!done && dx.data != nullptr) dx.map().noalias() += dy.map() * w.map();
    if (!done && dw.data != nullptr) dw.map().noalias() += dy.map().transpose() * x.map();
    if (dbias != nullptr)
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(dbias, out_features) += dy.map().colwise().sum();
}

}  // namespace polyalpaca::cpu
