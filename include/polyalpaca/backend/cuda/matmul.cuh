/// @file backend/cuda/matmul.cuh
/// @brief One cuBLASLt matmul on row-major operands (fp32, or bf16 for GemmMath::Bf16; C and D always fp32),
/// optionally strided-batched, with an epilogue, whose descriptors, layouts and heuristic choice are cached per
/// shape so repeated calls skip the heuristic.
///
/// Row-major trick: a row-major (rows, cols) matrix with row stride ld is a column-major (cols, rows) matrix with
/// leading dimension ld. Row-major C = op(a) op(b) is column-major C^T = op(b)^T op(a)^T, so cuBLASLt's "A" is our
/// b and its "B" is our a, and its (m, n) is our (n, m). Epilogue vectors follow cuBLASLt's view: a bias of
/// length "rows of D" is one entry per column of our row-major C.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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

/// The compute type for fp32 operands in `math` (bf16 operands always use CUBLAS_COMPUTE_32F: bf16 products
/// accumulated in fp32). Bf16 here is the fallback for calls with no bf16-operand algorithm: cuBLASLt rounds the
/// fp32 operands to bf16 itself.
inline cublasComputeType_t compute_type(GemmMath math) {
    switch (math) {
        case GemmMath::Fp32:
            return CUBLAS_COMPUTE_32F;
        case GemmMath::Tf32:
            return CUBLAS_COMPUTE_32F_FAST_TF32;
        case GemmMath::Bf16:
            return CUBLAS_COMPUTE_32F_FAST_16BF;
    }
    return CUBLAS_COMPUTE_32F;
}

/// A row-major operand: (rows, cols) with row stride ld, `batch_stride` elements between batch entries, elements
/// of `type` (CUDA_R_32F, or CUDA_R_16BF for A and B of a bf16 product).
struct Operand {
    void const* data;
    Index rows, cols, ld;
    std::int64_t batch_stride;
    cudaDataType_t type = CUDA_R_32F;
};

/// Elements from an operand's first to its last (batch entries and row padding included).
inline Index operand_extent(Operand const& o, int batch) {
    return Index(batch - 1) * Index(o.batch_stride) + (o.rows - 1) * o.ld + o.cols;
}

/// Everything one matmul needs. c is both the input C (scaled by beta) and the output D.
struct MatmulCall {
    Trans trans_a, trans_b;
    Operand a, b, c;
    int batch = 1;
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    void const* bias = nullptr;  // the bias (BIAS epilogues) or bias-gradient output (BGRAD epilogues)
    void const* aux = nullptr;   // the GELU input (GELU_AUX writes it, DGELU reads it)
    std::int64_t aux_ld = 0;
    float alpha = 1.0f, beta = 0.0f;
};

/// A cached plan: descriptors and layouts for one key, and the heuristic's algorithm (found = false when
/// cuBLASLt has none, which callers with a fallback test for).
struct MatmulPlan {
    MatmulDesc desc;
    Layout first, second, out;
    cublasLtMatmulAlgo_t algo{};
    bool found = false;
};

inline Layout make_layout(Operand const& o, int batch) {
    cublasLtMatrixLayout_t layout = nullptr;
    POLYALPACA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&layout, o.type, std::uint64_t(o.cols), std::uint64_t(o.rows),
                                                     std::int64_t(o.ld)));
    Layout owned(layout);
    if (batch > 1) {
        std::int32_t const count = batch;
        std::int64_t const stride = o.batch_stride;
        POLYALPACA_CUDA_CHECK(
            cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
        POLYALPACA_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                               &stride, sizeof(stride)));
    }
    return owned;
}

/// Plans are keyed by everything the heuristic sees (handle, device, workspace, math, shapes, strides, epilogue,
/// pointer alignments, operand types) and live as long as the process; a plan is used by one handle, i.e. one Context.
using PlanKey = std::array<std::int64_t, 30>;
inline constexpr std::size_t plan_key_epilogue = 19;  // the index of the epilogue in a PlanKey

inline std::mutex& plan_mutex() {
    static std::mutex m;
    return m;
}
inline std::map<PlanKey, MatmulPlan>& plan_cache() {
    static std::map<PlanKey, MatmulPlan> cache;
    return cache;
}

inline PlanKey plan_key(Context const& ctx, MatmulCall const& call) {
    auto const handle = std::int64_t(reinterpret_cast<std::uintptr_t>(ctx.cublaslt()));
    return {handle,
            ctx.device(),
            std::int64_t(ctx.workspace_bytes()),
            std::int64_t(ctx.gemm_math()),
            std::int64_t(call.trans_a),
            std::int64_t(call.trans_b),
            call.a.rows,
            call.a.cols,
            call.a.ld,
            call.a.batch_stride,
            call.b.rows,
            call.b.cols,
            call.b.ld,
            call.b.batch_stride,
            call.c.rows,
            call.c.cols,
            call.c.ld,
            call.c.batch_stride,
            call.batch,
            std::int64_t(call.epilogue),
            call.aux_ld,
            alignment_of(call.a.data),
            alignment_of(call.b.data),
            alignment_of(call.c.data),
            call.bias ? std::int64_t(alignment_of(call.bias)) : 0,
            call.aux ? std::int64_t(alignment_of(call.aux)) : 0,
            std::int64_t(call.a.type),
            std::int64_t(call.b.type),
            0,
            0};
}

/// Sets the pointer attributes that change from call to call on a cached descriptor.
inline void set_pointers(cublasLtMatmulDesc_t desc, MatmulCall const& call) {
    if (call.bias) set_desc(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, call.bias);
    if (call.aux) set_desc(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, call.aux);
}

inline MatmulPlan make_plan(Context const& ctx, MatmulCall const& call) {
    require(call.a.type == call.b.type && call.c.type == CUDA_R_32F,
            "matmul: operands a and b must share one element type and c must be fp32");
    MatmulPlan plan;
    cublasLtMatmulDesc_t raw_desc = nullptr;
    cublasComputeType_t const compute =
        call.a.type == CUDA_R_16BF ? CUBLAS_COMPUTE_32F : compute_type(ctx.gemm_math());
    POLYALPACA_CUDA_CHECK(cublasLtMatmulDescCreate(&raw_desc, compute, CUDA_R_32F));
    plan.desc.reset(raw_desc);
    cublasOperation_t const op_first = call.trans_b == Trans::Yes ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t const op_second = call.trans_a == Trans::Yes ? CUBLAS_OP_T : CUBLAS_OP_N;
    set_desc(raw_desc, CUBLASLT_MATMUL_DESC_TRANSA, op_first);
    set_desc(raw_desc, CUBLASLT_MATMUL_DESC_TRANSB, op_second);
    if (call.epilogue != CUBLASLT_EPILOGUE_DEFAULT) set_desc(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE, call.epilogue);
    if (call.aux) set_desc(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, call.aux_ld);
    set_pointers(raw_desc, call);

    plan.first = make_layout(call.b, call.batch);
    plan.second = make_layout(call.a, call.batch);
    plan.out = make_layout(call.c, call.batch);

    cublasLtMatmulPreference_t raw_pref = nullptr;
    POLYALPACA_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&raw_pref));
    Preference const pref(raw_pref);
    set_preference(raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, std::uint64_t(ctx.workspace_bytes()));
    set_preference(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment_of(call.b.data));
    set_preference(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment_of(call.a.data));
    set_preference(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment_of(call.c.data));
    set_preference(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment_of(call.c.data));

    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    cublasStatus_t const status =
        cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), raw_desc, plan.first.get(), plan.second.get(), plan.out.get(),
                                       plan.out.get(), raw_pref, 1, &heuristic, &found);
    if (status != CUBLAS_STATUS_NOT_SUPPORTED) POLYALPACA_CUDA_CHECK(status);
    plan.found = status == CUBLAS_STATUS_SUCCESS && found > 0;
    if (plan.found) plan.algo = heuristic.algo;
    return plan;
}

/// Runs the matmul, queued on ctx's stream. Returns false without running anything when cuBLASLt has no
/// algorithm for it (callers with a fallback use that; the others use matmul_or_fail).
inline bool try_matmul(Context& ctx, MatmulCall const& call) {
    ctx.make_current();
    PlanKey const key = plan_key(ctx, call);
    MatmulPlan* plan = nullptr;
    {
        std::lock_guard<std::mutex> lock(plan_mutex());
        auto& cache = plan_cache();
        auto it = cache.find(key);
        if (it == cache.end()) it = cache.emplace(key, make_plan(ctx, call)).first;
        plan = &it->second;
    }
    if (!plan->found) return false;
    set_pointers(plan->desc.get(), call);
    POLYALPACA_CUDA_CHECK(cublasLtMatmul(ctx.cublaslt(), plan->desc.get(), &call.alpha, call.b.data, plan->first.get(),
                                         call.a.data, plan->second.get(), &call.beta, call.c.data, plan->out.get(),
                                         const_cast<void*>(call.c.data), plan->out.get(), &plan->algo, ctx.workspace(),
                                         ctx.workspace_bytes(), ctx.stream()));
    return true;
}

inline void matmul_or_fail(Context& ctx, MatmulCall const& call, char const* what) {
    bool const ran = try_matmul(ctx, call);
    require(ran, what, ": cuBLASLt has no algorithm for op(a) (", call.a.rows, ", ", call.a.cols, ") x op(b) (",
            call.b.rows, ", ", call.b.cols, "), batch ", call.batch, ", epilogue ", int(call.epilogue),
            " at these pointer alignments");
}

}  // namespace detail

}  // namespace polyalpaca::cuda
