/// @file backend/cuda/gemm.cuh
/// @brief fp32 GEMMs on cuBLASLt for row-major views, with the bias epilogue; linear_forward y = x W^T (+ b).
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>

#include <cublasLt.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

enum class Trans { No, Yes };

namespace detail {

struct MatmulDescDeleter {
    void operator()(cublasLtMatmulDesc_t d) const { (void)cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
    void operator()(cublasLtMatrixLayout_t l) const { (void)cublasLtMatrixLayoutDestroy(l); }
};
struct PreferenceDeleter {
    void operator()(cublasLtMatmulPreference_t p) const { (void)cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, MatmulDescDeleter>;
using Layout = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDeleter>;
using Preference = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PreferenceDeleter>;

/// A row-major (rows, cols) fp32 matrix is a column-major (cols, rows) one with leading dimension cols.
inline Layout row_major_layout(Index rows, Index cols) {
    cublasLtMatrixLayout_t layout = nullptr;
    POLYALPACA_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, std::uint64_t(cols), std::uint64_t(rows), std::int64_t(cols)));
    return Layout(layout);
}

/// The largest power of two (at most 256) dividing the address: cuBLASLt assumes 256 unless told.
inline std::uint32_t alignment_of(void const* p) {
    auto const address = reinterpret_cast<std::uintptr_t>(p);
    std::uint32_t alignment = 256;
    while (alignment > 1 && address % alignment != 0) alignment /= 2;
    return alignment;
}

template <class Attribute, class Value>
void set_desc(cublasLtMatmulDesc_t desc, Attribute attribute, Value const& value) {
    POLYALPACA_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
}
template <class Value>
void set_preference(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attribute,
                    Value const& value) {
    POLYALPACA_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value)));
}

}  // namespace detail

/// c = alpha * op(a) op(b) + beta * c (+ bias broadcast over rows), all row-major fp32 device memory, queued on
/// ctx's stream. op(a) is (M, K), op(b) is (K, N), c is (M, N), bias has N entries or is nullptr.
/// Exact fp32 arithmetic (CUBLAS_COMPUTE_32F, no TF32). With beta = 0, c is only written.
inline void gemm(Context& ctx, Trans trans_a, Trans trans_b, View<float const> a, View<float const> b,
                 float const* bias, View<float> c, float alpha = 1.0f, float beta = 0.0f) {
    Index const m = trans_a == Trans::No ? a.rows : a.cols;
    Index const k = trans_a == Trans::No ? a.cols : a.rows;
    Index const kb = trans_b == Trans::No ? b.rows : b.cols;
    Index const n = trans_b == Trans::No ? b.cols : b.rows;
    require(k == kb, "gemm: inner dimensions differ: op(a) is (", m, ", ", k, ") but op(b) is (", kb, ", ", n, ")");
    require_shape(c, m, n, "gemm: c");
    require(m > 0 && n > 0 && k > 0, "gemm: empty product: op(a) is (", m, ", ", k, "), op(b) is (", kb, ", ", n, ")");
    require(a.data && b.data && c.data, "gemm: a, b and c must point to device memory, got a null pointer");

    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLASLt multiplies B by A, m and n swap.
    cublasLtMatmulDesc_t raw_desc = nullptr;
    POLYALPACA_CUDA_CHECK(cublasLtMatmulDescCreate(&raw_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    detail::MatmulDesc const desc(raw_desc);
    cublasOperation_t const op_first = trans_b == Trans::Yes ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t const op_second = trans_a == Trans::Yes ? CUBLAS_OP_T : CUBLAS_OP_N;
    detail::set_desc(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, op_first);
    detail::set_desc(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, op_second);
    if (bias) {
        detail::set_desc(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
        detail::set_desc(desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<void const*>(bias));
    }

    auto const layout_first = detail::row_major_layout(b.rows, b.cols);
    auto const layout_second = detail::row_major_layout(a.rows, a.cols);
    auto const layout_c = detail::row_major_layout(c.rows, c.cols);

    cublasLtMatmulPreference_t raw_pref = nullptr;
    POLYALPACA_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&raw_pref));
    detail::Preference const pref(raw_pref);
    detail::set_preference(pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, std::uint64_t(ctx.workspace_bytes()));
    detail::set_preference(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, detail::alignment_of(b.data));
    detail::set_preference(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, detail::alignment_of(a.data));
    detail::set_preference(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, detail::alignment_of(c.data));
    detail::set_preference(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, detail::alignment_of(c.data));

    ctx.make_current();
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    POLYALPACA_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), desc.get(), layout_first.get(),
                                                         layout_second.get(), layout_c.get(), layout_c.get(),
                                                         pref.get(), 1, &heuristic, &found));
    require(found > 0, "gemm: cuBLASLt has no fp32 algorithm for (", m, ", ", k, ") x (", k, ", ", n, ")",
            bias ? " with bias" : "", " at these pointer alignments");
    POLYALPACA_CUDA_CHECK(cublasLtMatmul(ctx.cublaslt(), desc.get(), &alpha, b.data, layout_first.get(), a.data,
                                         layout_second.get(), &beta, c.data, layout_c.get(), c.data, layout_c.get(),
                                         &heuristic.algo, ctx.workspace(), ctx.workspace_bytes(), ctx.stream()));
}

/// y = x W^T + b (or y += x W^T + b when accumulate) in the HF layout: x (N, In), w (Out, In), bias (Out) or
/// nullptr, y (N, Out); row-major fp32 device memory, queued on ctx's stream.
inline void linear_forward(Context& ctx, View<float const> x, View<float const> w, float const* bias, View<float> y,
                           bool accumulate = false) {
    require(x.cols == w.cols, "linear_forward: x has ", x.cols, " features but w (Out, In) expects In = ", w.cols);
    require_shape(y, x.rows, w.rows, "linear_forward: y");
    gemm(ctx, Trans::No, Trans::Yes, x, w, bias, y, 1.0f, accumulate ? 1.0f : 0.0f);
}

}  // namespace polyalpaca::cuda
