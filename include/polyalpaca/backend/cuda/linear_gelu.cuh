/// @file backend/cuda/linear_gelu.cuh
/// @brief A dense layer followed by the tanh GELU (BLOOM's MLP up-projection) with the GELU fused into cuBLASLt
/// epilogues: GELU_AUX_BIAS in the forward GEMM and DGELU_BGRAD in the GEMM that produces the GELU's output
/// gradient. Each falls back to plain GEMMs plus small kernels when cuBLASLt has no algorithm for the epilogue.
///
/// cuBLASLt's GELU is the tanh form, the same function as cpu::gelu_tanh_forward:
/// gelu(x) = 0.5 x (1 + tanh(0.79788456 (x + 0.044715 x^3))).
#pragma once

#include <cstdint>

#include <cublasLt.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/gemm.cuh"
#include "polyalpaca/backend/cuda/matmul.cuh"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Scratch slot for the GELU ops' temporaries (distinct from linear_backward's, which they call).
inline constexpr int gelu_scratch_slot = scratch_slot::gelu;

__device__ inline float gelu_tanh(float x) {
    float const c = 0.79788456f, k = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(c * x * (1.0f + k * x * x)));
}
__device__ inline float gelu_tanh_slope(float x) {
    float const c = 0.79788456f, k = 0.044715f;
    float const t = tanhf(c * x * (1.0f + k * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * k * x * x);
}

/// y[i] = gelu(x[i]).
template <class T>
__global__ void gelu_tanh_kernel(T const* x, Index n, T* y) {
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x)
        y[i] = T(gelu_tanh(float(x[i])));
}

/// out[i] = g[i] * gelu'(pre[i]); out may alias g.
template <class T>
__global__ void gelu_tanh_grad_kernel(T const* g, T const* pre, Index n, T* out) {
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x)
        out[i] = T(float(g[i]) * gelu_tanh_slope(float(pre[i])));
}

/// The GELU epilogues need the aux matrix's leading dimension divisible by 8 and 16-byte aligned pointers.
inline bool gelu_epilogue_fits(Index cols, void const* aux) { return cols % 8 == 0 && alignment_of(aux) >= 16; }

}  // namespace detail

/// pre = x W^T + b and y = gelu_tanh(pre): x (N, In), w (Out, In), bias (Out) or nullptr, pre and y (N, Out).
/// pre is kept for the backward. Written, not added.
inline void linear_gelu_forward(Context& ctx, View<float const> x, View<float const> w, float const* bias,
                                View<float> pre, View<float> y) {
    require(!x.empty() && !w.empty(), "linear_gelu_forward: x and w must not be empty");
    require(x.cols == w.cols, "linear_gelu_forward: x has ", x.cols, " features but w (Out, In) expects In = ", w.cols);
    require_shape(pre, x.rows, w.rows, "linear_gelu_forward: pre");
    require_shape(y, x.rows, w.rows, "linear_gelu_forward: y");
    require(pre.data && y.data, "linear_gelu_forward: pre and y must point to device memory");
    if (detail::gelu_epilogue_fits(y.cols, pre.data)) {
        auto call = detail::gemm_call(Trans::No, Trans::Yes, x, w, y, "linear_gelu_forward");
        call.epilogue = bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
        call.bias = bias;
        call.aux = pre.data;
        call.aux_ld = pre.cols;
        if (detail::try_gemm(ctx, call, true)) return;
    }
    linear_forward(ctx, x, w, bias, pre);
    detail::gelu_tanh_kernel<float>
        <<<detail::grid_for(pre.size()), detail::block_threads, 0, ctx.stream()>>>(pre.data, pre.size(), y.data);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
}

/// Backward of linear_gelu_forward from dy = dL/dy (N, Out) and the saved pre: with dpre = dy * gelu'(pre),
/// dx += dpre W, dw += dpre^T x, dbias += column sums of dpre (the linear_backward contract; nullptr skips).
inline void linear_gelu_backward(Context& ctx, View<float const> x, View<float const> w, View<float const> pre,
                                 View<float const> dy, View<float> dx, View<float> dw, float* dbias) {
    require_shape(pre, x.rows, w.rows, "linear_gelu_backward: pre");
    require_shape(dy, x.rows, w.rows, "linear_gelu_backward: dy");
    require(pre.data && dy.data, "linear_gelu_backward: pre and dy must point to device memory");
    auto* dpre = static_cast<float*>(ctx.scratch(detail::gelu_scratch_slot, gelu_grad_bytes(dy.size())));
    detail::gelu_tanh_grad_kernel<float>
        <<<detail::grid_for(dy.size()), detail::block_threads, 0, ctx.stream()>>>(dy.data, pre.data, dy.size(), dpre);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
    linear_backward(ctx, x, w, View<float const>(dpre, dy.rows, dy.cols), dx, dw, dbias);
}

/// The GELU's backward fused into the GEMM after it: for h = gelu_tanh(pre) feeding z = h W^T (+ c),
/// dpre = (dz W) * gelu'(pre) is WRITTEN and dbias += column sums of dpre (the bias that produced pre; nullptr
/// skips). dz (N, Out), w (Out, Hid), pre and dpre (N, Hid). Uses DGELU_BGRAD (DGELU without dbias).
inline void linear_backward_dgelu(Context& ctx, View<float const> dz, View<float const> w, View<float const> pre,
                                  View<float> dpre, float* dbias) {
    require(!dz.empty() && !w.empty(), "linear_backward_dgelu: dz and w must not be empty");
    require(dz.cols == w.rows, "linear_backward_dgelu: dz has ", dz.cols,
            " columns but w (Out, Hid) has Out = ", w.rows);
    require_shape(pre, dz.rows, w.cols, "linear_backward_dgelu: pre");
    require_shape(dpre, dz.rows, w.cols, "linear_backward_dgelu: dpre");
    require(pre.data && dpre.data, "linear_backward_dgelu: pre and dpre must point to device memory");
    if (detail::gelu_epilogue_fits(pre.cols, pre.data)) {
        auto call = detail::gemm_call(Trans::No, Trans::No, dz, w, dpre, "linear_backward_dgelu");
        call.aux = pre.data;
        call.aux_ld = pre.cols;
        float* temp = nullptr;
        if (dbias) {
            temp = static_cast<float*>(ctx.scratch(detail::gelu_scratch_slot, bias_grad_bytes(pre.cols)));
            call.epilogue = CUBLASLT_EPILOGUE_DGELU_BGRAD;
            call.bias = temp;
        } else {
            call.epilogue = CUBLASLT_EPILOGUE_DGELU;
        }
        if (detail::try_gemm(ctx, call, true)) {
            if (dbias) detail::add_vector(ctx, temp, pre.cols, dbias);
            return;
        }
    }
    detail::gemm_bias(ctx, Trans::No, Trans::No, dz, w, nullptr, dpre, 1.0f, 0.0f, true, "linear_backward_dgelu");
    detail::gelu_tanh_grad_kernel<float><<<detail::grid_for(dpre.size()), detail::block_threads, 0, ctx.stream()>>>(
        dpre.data, pre.data, dpre.size(), dpre.data);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
    if (dbias) detail::add_column_sums(ctx, View<float const>(dpre), dbias);
}

}  // namespace polyalpaca::cuda
