/// @file backend/cuda/optim_ops.cuh
/// @brief GPU optimizer kernels: the fused AdamW update (optionally clipping and zeroing the gradients), a
/// deterministic squared norm, in-place scaling; same names, arguments and checks as backend/cpu/optim_ops.hpp.
#pragma once

#include <algorithm>
#include <cmath>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

/// Hyperparameters of one AdamW step (the fields of cpu::AdamWStep). `step` counts from 1 and is already
/// incremented for this update.
struct AdamWStep {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    long step;
};

namespace detail {

/// Scratch slot holding squared_norm's per-block partial sums and the total (shared with the norms' column
/// sums: ops on one stream run in order, so they never overlap).
inline constexpr int optim_scratch_slot = scratch_slot::squared_norm;
static_assert(squared_norm_block_values == block_threads, "squared_norm's blocks are counted by op_memory.hpp");

/// With `consume`, each gradient is multiplied by grad_scale as it is read (clipping) and its slot set to zero for
/// the next step's accumulation.
struct AdamWOp {
    float* param;
    float* grad;
    float* exp_avg;
    float* exp_avg_sq;
    float decay, avg_weight, beta2, sq_weight, neg_step_size, bias_correction2_sqrt, eps, grad_scale;
    bool consume;
    __device__ void operator()(Index i) const {
        float g = grad[i];
        if (consume) {
            g = __fmul_rn(g, grad_scale);  // rounded, never fused into what follows: scale()'s value
            grad[i] = 0.f;
        }
        float const m = exp_avg[i] + avg_weight * (g - exp_avg[i]);
        float const v = exp_avg_sq[i] * beta2 + sq_weight * g * g;
        float const denom = sqrtf(v) / bias_correction2_sqrt + eps;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = param[i] * decay + neg_step_size * m / denom;
    }
};

struct ScaleOp {
    float* x;
    float factor;
    __device__ void operator()(Index i) const { x[i] *= factor; }
};

/// partial[b] = sum of x[i]^2 over i = b * blockDim + t + k * gridDim * blockDim, in double. The grid depends only
/// on n, so the summation order, and the result, are the same in every run.
template <class T>
__global__ void squared_norm_partial_kernel(T const* x, Index n, double* partial) {
    double sum = 0;
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x)
        sum += double(x[i]) * double(x[i]);
    sum = block_sum(sum);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

/// total[0] = sum of partial[0 .. count), by one block.
template <class T>
__global__ void squared_norm_finish_kernel(T const* partial, Index count, T* total) {
    T sum = 0;
    for (Index i = threadIdx.x; i < count; i += blockDim.x) sum += partial[i];
    sum = block_sum(sum);
    if (threadIdx.x == 0) total[0] = sum;
}

}  // namespace detail

namespace detail {
inline void adamw_pass(Context& ctx, float* param, float* grad, float* exp_avg, float* exp_avg_sq, Index n,
                       AdamWStep const& s, float grad_scale, bool consume) {
    require(n >= 0, "adamw_update: negative size ", n);
    require(s.step >= 1, "adamw_update: step counts from 1, got ", s.step);
    if (n == 0) return;
    require(param && grad && exp_avg && exp_avg_sq, "adamw_update: null pointer for ", n, " values");
    double const bias_correction1 = 1.0 - std::pow(s.beta1, double(s.step));
    double const bias_correction2 = 1.0 - std::pow(s.beta2, double(s.step));
    AdamWOp const op{param,
                     grad,
                     exp_avg,
                     exp_avg_sq,
                     float(1.0 - s.lr * s.weight_decay),
                     float(1.0 - s.beta1),
                     float(s.beta2),
                     float(1.0 - s.beta2),
                     float(-(s.lr / bias_correction1)),
                     float(std::sqrt(bias_correction2)),
                     float(s.eps),
                     grad_scale,
                     consume};
    ctx.make_current();
    ctx.parameters_written(param, std::size_t(n) * sizeof(float));
    for_each(ctx, n, op, "adamw_update");
}
}  // namespace detail

/// One torch.optim.AdamW step (amsgrad=False, maximize=False) over n device values, in one pass, in fp32 with the
/// same constants as the CPU kernel:
///   p *= 1 - lr*wd;  m = lerp(m, g, 1 - b1);  v = b2*v + (1 - b2)*g*g;
///   p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
inline void adamw_update(Context& ctx, float* param, float const* grad, float* exp_avg, float* exp_avg_sq, Index n,
                         AdamWStep const& s) {
    // Not consuming: the kernel only reads grad.
    detail::adamw_pass(ctx, param, const_cast<float*>(grad), exp_avg, exp_avg_sq, n, s, 1.f, false);
}

/// adamw_update with the gradients grad[i] * grad_scale (clipping; 1 for none), leaving grad zero for the next
/// step's accumulation, in one pass (cpu::adamw_update_consuming).
inline void adamw_update_consuming(Context& ctx, float* param, float* grad, float* exp_avg, float* exp_avg_sq,
                                   Index n, AdamWStep const& s, float grad_scale) {
    detail::adamw_pass(ctx, param, grad, exp_avg, exp_avg_sq, n, s, grad_scale, true);
}

/// Sum of x[i]^2 over n device values, accumulated in double, returned on the host (waits for the stream).
/// Deterministic: the same in every run for a given n.
inline double squared_norm(Context& ctx, float const* x, Index n) {
    require(n >= 0, "squared_norm: negative size ", n);
    if (n == 0) return 0.0;
    require(x != nullptr, "squared_norm: null pointer for ", n, " values");
    ctx.make_current();
    Index const blocks = squared_norm_blocks(n);  // at most 1024; one block then sums their partials
    auto* partial = static_cast<double*>(ctx.scratch(detail::optim_scratch_slot, squared_norm_bytes(n)));
    double* total = partial + blocks;
    detail::squared_norm_partial_kernel<float>
        <<<unsigned(blocks), detail::block_threads, 0, ctx.stream()>>>(x, n, partial);
    detail::check_launch("squared_norm_partial_kernel");
    detail::squared_norm_finish_kernel<double><<<1, detail::block_threads, 0, ctx.stream()>>>(partial, blocks, total);
    detail::check_launch("squared_norm_finish_kernel");
    double host = 0;
    POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(&host, total, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    return host;
}

/// x[i] *= factor for i in [0, n) device values.
inline void scale(Context& ctx, float* x, Index n, float factor) {
    require(n >= 0, "scale: negative size ", n);
    if (n == 0) return;
    require(x != nullptr, "scale: null pointer for ", n, " values");
    ctx.make_current();
    ctx.parameters_written(x, std::size_t(n) * sizeof(float));  // may scale weights, not only gradients
    detail::for_each(ctx, n, detail::ScaleOp{x, factor}, "scale");
}

}  // namespace polyalpaca::cuda
