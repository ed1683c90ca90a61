/// @file backend/cuda/gemm.cuh
/// @brief fp32-storage GEMMs on cuBLASLt for row-major views (plain and strided-batched), and the dense layer
/// y = x W^T + b forward and backward with the bias (and bias gradient) fused into cuBLASLt epilogues.
///
/// The multiply runs in ctx.gemm_math(): exact fp32, tf32 tensor cores or bf16 tensor cores, always with fp32
/// accumulation and fp32 inputs and outputs in memory (see matmul.cuh for the row-major trick and the plan cache).
/// In Bf16 the operands are converted to bf16 (round to nearest even) before the multiply: a layer's weight w from
/// the Context's cached bf16 working copy (refreshed only after the weight is written), activations into scratch
/// on every call (bf16.cuh).
#pragma once

#include <cstdint>

#include <cublasLt.h>

#include "polyalpaca/backend/cuda/bf16.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/backend/cuda/matmul.cuh"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Scratch slot linear_backward keeps its bias-gradient temporary in (see Context::scratch).
inline constexpr int linear_scratch_slot = scratch_slot::bias_grad;

inline constexpr int column_sum_rows = 16;  // threads per column in add_column_sums_kernel

/// dst[j] += sum_i src[i * cols + j]: one block of (32, column_sum_rows) threads per 32 columns; each column's
/// partial sums combine in shared memory in a fixed order (deterministic).
template <class T>
__global__ void add_column_sums_kernel(T const* src, Index rows, Index cols, T* dst) {
    __shared__ float partial[column_sum_rows][32];
    Index const j = Index(blockIdx.x) * 32 + threadIdx.x;
    float sum = 0.0f;
    if (j < cols)
        for (Index i = threadIdx.y; i < rows; i += column_sum_rows) sum += float(src[i * cols + j]);
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
        float total = 0.0f;
        for (int r = 0; r < column_sum_rows; ++r) total += partial[r][threadIdx.x];
        dst[j] += T(total);
    }
}

/// dst[i] += src[i] for n entries.
template <class T>
__global__ void add_kernel(T const* src, Index n, T* dst) {
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x)
        dst[i] += src[i];
}

inline void add_column_sums(Context& ctx, View<float const> src, float* dst) {
    if (src.rows == 0 || src.cols == 0) return;
    dim3 const block(32, column_sum_rows);
    auto const blocks = unsigned((src.cols + 31) / 32);
    add_column_sums_kernel<float><<<blocks, block, 0, ctx.stream()>>>(src.data, src.rows, src.cols, dst);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
}

inline void add_vector(Context& ctx, float const* src, Index n, float* dst) {
    if (n == 0) return;
    add_kernel<float><<<grid_for(n), block_threads, 0, ctx.stream()>>>(src, n, dst);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
}

inline Operand operand(View<float const> v) { return {v.data, v.rows, v.cols, v.cols, 0}; }

inline MatmulCall gemm_call(Trans trans_a, Trans trans_b, View<float const> a, View<float const> b, View<float> c,
                            char const* what) {
    Index const m = trans_a == Trans::No ? a.rows : a.cols;
    Index const k = trans_a == Trans::No ? a.cols : a.rows;
    Index const kb = trans_b == Trans::No ? b.rows : b.cols;
    Index const n = trans_b == Trans::No ? b.cols : b.rows;
    require(k == kb, what, ": inner dimensions differ: op(a) is (", m, ", ", k, ") but op(b) is (", kb, ", ", n, ")");
    require_shape(c, m, n, what);
    require(m > 0 && n > 0 && k > 0, what, ": empty product: op(a) is (", m, ", ", k, "), op(b) is (", kb, ", ", n,
            ")");
    require(a.data && b.data && c.data, what, ": a, b and c must point to device memory, got a null pointer");
    MatmulCall call{trans_a, trans_b, operand(a), operand(b), operand(View<float const>(c))};
    return call;
}

/// o with bf16 elements: o itself when already bf16, else converted now: from the weight's bf16 working copy
/// when `weight`, else into scratch `slot`. Layout (ld, batch stride) is kept.
inline Operand bf16_operand(Context& ctx, Operand const& o, int batch, int slot, bool weight) {
    if (o.type == CUDA_R_16BF) return o;
    Operand converted = o;
    Index const n = operand_extent(o, batch);
    auto const* src = static_cast<float const*>(o.data);
    converted.data = weight ? bf16_weight(ctx, src, n) : bf16_scratch(ctx, slot, src, n);
    converted.type = CUDA_R_16BF;
    return converted;
}

/// Runs `call` in ctx.gemm_math(); returns false, running nothing, when cuBLASLt has no algorithm for it. In Bf16
/// the fp32 operands are converted to bf16 first (b is a layer weight when `b_is_weight`); when cuBLASLt has no
/// algorithm for the bf16 operands and both were fp32, the fp32 operands run with CUBLAS_COMPUTE_32F_FAST_16BF.
/// A weight kept in bf16 only (frozen_bf16.cuh) has no fp32 values: it multiplies in Bf16 from its bf16 copy, never
/// on the fp32 path.
inline bool try_gemm(Context& ctx, MatmulCall const& call, bool b_is_weight) {
    bool const bf16_only =
        b_is_weight && ctx.is_resident_weight(call.b.data, std::size_t(operand_extent(call.b, call.batch)));
    require(!bf16_only || ctx.gemm_math() == GemmMath::Bf16, "a weight kept in bf16 only (cuda/frozen_bf16.cuh) "
            "multiplies in GemmMath::Bf16 alone, but the context is set to ", to_string(ctx.gemm_math()));
    if (ctx.gemm_math() != GemmMath::Bf16) return try_matmul(ctx, call);
    MatmulCall bf16 = call;
    bf16.a = bf16_operand(ctx, call.a, call.batch, bf16_scratch_first, false);
    bf16.b = bf16_operand(ctx, call.b, call.batch, bf16_scratch_second, b_is_weight);
    if (try_matmul(ctx, bf16)) return true;
    return !bf16_only && call.a.type == CUDA_R_32F && call.b.type == CUDA_R_32F && try_matmul(ctx, call);
}

inline void gemm_or_fail(Context& ctx, MatmulCall const& call, bool b_is_weight, char const* what) {
    bool const ran = try_gemm(ctx, call, b_is_weight);
    require(ran, what, ": cuBLASLt has no algorithm for op(a) (", call.a.rows, ", ", call.a.cols, ") x op(b) (",
            call.b.rows, ", ", call.b.cols, "), batch ", call.batch, ", epilogue ", int(call.epilogue),
            " at these pointer alignments");
}

/// gemm (see below) with b marked as a layer weight or not.
inline void gemm_bias(Context& ctx, Trans trans_a, Trans trans_b, View<float const> a, View<float const> b,
                      float const* bias, View<float> c, float alpha, float beta, bool b_is_weight, char const* what) {
    auto call = gemm_call(trans_a, trans_b, a, b, c, what);
    if (bias) {
        call.epilogue = CUBLASLT_EPILOGUE_BIAS;
        call.bias = bias;
    }
    call.alpha = alpha;
    call.beta = beta;
    gemm_or_fail(ctx, call, b_is_weight, what);
}

/// A strided-batched product whose a and b may already hold bf16 elements (attention packs heads straight to
/// bf16 in Bf16); a and b describe the first entry, with their batch strides set. c_i = alpha op(a_i) op(b_i).
inline void gemm_batched(Context& ctx, Trans trans_a, Trans trans_b, Operand const& a, Operand const& b, View<float> c,
                         std::int64_t stride_c, int batch, float alpha, float beta, char const* what) {
    require(batch > 0, what, ": batch must be positive, got ", batch);
    // The views only carry shapes into the checks; bf16 data is never read through them.
    auto call = gemm_call(trans_a, trans_b, View<float const>(static_cast<float const*>(a.data), a.rows, a.cols),
                          View<float const>(static_cast<float const*>(b.data), b.rows, b.cols), c, what);
    call.a = a;
    call.b = b;
    call.c.batch_stride = stride_c;
    call.batch = batch;
    call.alpha = alpha;
    call.beta = beta;
    gemm_or_fail(ctx, call, false, what);
}

}  // namespace detail

/// c = alpha * op(a) op(b) + beta * c (+ bias broadcast over rows), all row-major fp32 device memory, queued on
/// ctx's stream. op(a) is (M, K), op(b) is (K, N), c is (M, N), bias has N entries or is nullptr.
/// The multiply follows ctx.gemm_math(). With beta = 0, c is only written.
inline void gemm(Context& ctx, Trans trans_a, Trans trans_b, View<float const> a, View<float const> b,
                 float const* bias, View<float> c, float alpha = 1.0f, float beta = 0.0f) {
    detail::gemm_bias(ctx, trans_a, trans_b, a, b, bias, c, alpha, beta, false, "gemm");
}

/// `batch` independent products c_i = alpha * op(a_i) op(b_i) + beta * c_i, where a_i starts stride_a floats
/// after a_{i-1} (likewise b, c). a, b and c describe the first entry (row-major, rows of `cols` floats).
inline void gemm_strided_batched(Context& ctx, Trans trans_a, Trans trans_b, View<float const> a, std::int64_t stride_a,
                                 View<float const> b, std::int64_t stride_b, View<float> c, std::int64_t stride_c,
                                 int batch, float alpha = 1.0f, float beta = 0.0f) {
    auto first = detail::operand(a), second = detail::operand(b);
    first.batch_stride = stride_a;
    second.batch_stride = stride_b;
    detail::gemm_batched(ctx, trans_a, trans_b, first, second, c, stride_c, batch, alpha, beta, "gemm_strided_batched");
}

/// y = x W^T + b (or y += x W^T + b when accumulate) in the HF layout: x (N, In), w (Out, In), bias (Out) or
/// nullptr, y (N, Out); row-major fp32 device memory, queued on ctx's stream. The bias rides the BIAS epilogue.
/// w is parameter memory: in Bf16 it is read from its cached bf16 working copy.
inline void linear_forward(Context& ctx, View<float const> x, View<float const> w, float const* bias, View<float> y,
                           bool accumulate = false) {
    require(!x.empty(), "linear_forward: x is empty");
    require(!w.empty(), "linear_forward: w is empty");
    require(x.cols == w.cols, "linear_forward: x has ", x.cols, " features but w (Out, In) expects In = ", w.cols);
    require_shape(y, x.rows, w.rows, "linear_forward: y");
    detail::gemm_bias(ctx, Trans::No, Trans::Yes, x, w, bias, y, 1.0f, accumulate ? 1.0f : 0.0f, true,
                      "linear_forward");
}

/// dx += dy W, dw += dy^T x, dbias += column sums of dy; each output is skipped when its data is nullptr
/// (the CPU contract). When dw and dbias are both wanted, the bias gradient comes from the dW GEMM's BGRADB
/// epilogue into a scratch vector (the epilogue writes, the contract adds), then one small add; otherwise, or
/// when cuBLASLt offers no BGRADB algorithm, from a column-sum kernel.
inline void linear_backward(Context& ctx, View<float const> x, View<float const> w, View<float const> dy,
                            View<float> dx, View<float> dw, float* dbias) {
    require(!x.empty(), "linear_backward: x is empty");
    require(!w.empty(), "linear_backward: w is empty");
    Index const n = x.rows, in_features = x.cols, out_features = w.rows;
    require_shape(w, out_features, in_features, "linear_backward: w");  // (Out, In)
    require_shape(dy, n, out_features, "linear_backward: dy");          // (N, Out)
    require(dy.data != nullptr, "linear_backward: dy has no data");
    if (dx.data) {
        require_shape(dx, n, in_features, "linear_backward: dx");  // (N, In)
        detail::gemm_bias(ctx, Trans::No, Trans::No, dy, w, nullptr, dx, 1.0f, 1.0f, true, "linear_backward: dx");
    }
    bool bias_done = false;
    if (dw.data) {
        require_shape(dw, out_features, in_features, "linear_backward: dw");  // (Out, In)
        auto call = detail::gemm_call(Trans::Yes, Trans::No, dy, x, dw, "linear_backward: dw");
        call.beta = 1.0f;
        if (dbias) {
            // cuBLASLt's B is our a = dy; BGRADB reduces it over k = N, one entry per column of dy.
            auto* temp = static_cast<float*>(ctx.scratch(detail::linear_scratch_slot, bias_grad_bytes(out_features)));
            call.epilogue = CUBLASLT_EPILOGUE_BGRADB;
            call.bias = temp;
            bias_done = detail::try_gemm(ctx, call, false);
            if (bias_done) detail::add_vector(ctx, temp, out_features, dbias);
        }
        if (!bias_done) {
            call.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
            call.bias = nullptr;
            detail::gemm_or_fail(ctx, call, false, "linear_backward: dw");
        }
    }
    if (dbias && !bias_done) detail::add_column_sums(ctx, dy, dbias);
}

}  // namespace polyalpaca::cuda
