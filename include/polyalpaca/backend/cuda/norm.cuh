/// @file backend/cuda/norm.cuh
/// @brief LayerNorm and RMSNorm on the GPU, forward and backward; same names, arguments and checks as
/// backend/cpu/norm.hpp. One block per row with row statistics in double (as the CPU); gamma/beta gradients are
/// deterministic column sums: fixed row chunks summed in double, then the chunks summed in a fixed order (each
/// warp of a 32-column block sums every 8th chunk, then the 8 warps' sums are added in warp order).
#pragma once

#include <algorithm>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Scratch slot holding the column partial sums of a norm backward.
inline constexpr int norm_scratch_slot = scratch_slot::norm_grads;
/// Warps of a column_finish_kernel block, which sums the chunks of 32 columns: 8 warps cut the serial loop over
/// 256 chunks to 32 loads per thread.
inline constexpr int norm_finish_warps = 8;

inline void check_norm_input(View<float const> x, View<float> out, char const* x_name, char const* out_name,
                             char const* op) {
    require(!x.empty(), op, ": ", x_name, " is empty");
    require_shape(out, x.rows, x.cols, out_name);
    require(out.data != nullptr, out_name, " has no data");
}

/// With a residual, sum = x + residual is written first and normalised instead of x. Each thread reads back only
/// the columns it wrote itself (the same j loop every pass), so no barrier is needed between the passes.
template <class T>
__device__ T const* residual_row(T const* xr, T const* residual, T* sum, Index r, Index dim) {
    if (residual == nullptr) return xr;
    T const* rr = residual + r * dim;
    T* sr = sum + r * dim;
    for (Index j = threadIdx.x; j < dim; j += blockDim.x) sr[j] = xr[j] + rr[j];
    return sr;
}

/// Rows are grid-strided over blocks; every thread of a block walks the same rows, so block_sum is safe.
template <class T>
__global__ void layer_norm_forward_kernel(T const* x, T const* residual, T* sum_out, T const* gamma, T const* beta,
                                          T eps, T* y, T* mean, T* rstd, Index n, Index dim) {
    for (Index r = blockIdx.x; r < n; r += gridDim.x) {
        T const* xr = residual_row(x + r * dim, residual, sum_out, r, dim);
        T* yr = y + r * dim;
        double sum = 0;
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) sum += double(xr[j]);
        double const mu = block_sum(sum) / double(dim);
        double squares = 0;
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) squares += (double(xr[j]) - mu) * (double(xr[j]) - mu);
        double const inv_std = 1.0 / sqrt(block_sum(squares) / double(dim) + double(eps));
        for (Index j = threadIdx.x; j < dim; j += blockDim.x)
            yr[j] = T((double(xr[j]) - mu) * inv_std * double(gamma[j]) + double(beta[j]));
        if (threadIdx.x == 0) {
            if (mean != nullptr) mean[r] = T(mu);
            if (rstd != nullptr) rstd[r] = T(inv_std);
        }
    }
}

/// The RMSNorm forward, laid out as layer_norm_forward_kernel.
template <class T>
__global__ void rms_norm_forward_kernel(T const* x, T const* residual, T* sum_out, T const* gamma, T eps, T* y,
                                        T* rstd, Index n, Index dim) {
    for (Index r = blockIdx.x; r < n; r += gridDim.x) {
        T const* xr = residual_row(x + r * dim, residual, sum_out, r, dim);
        T* yr = y + r * dim;
        double squares = 0;
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) squares += double(xr[j]) * double(xr[j]);
        double const inv_rms = 1.0 / sqrt(block_sum(squares) / double(dim) + double(eps));
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) yr[j] = T(double(gamma[j]) * double(xr[j]) * inv_rms);
        if (threadIdx.x == 0 && rstd != nullptr) rstd[r] = T(inv_rms);
    }
}

/// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma; for RMSNorm mean is null and mean(g) is
/// not subtracted.
template <class T>
__global__ void norm_backward_dx_kernel(T const* dy, T const* x, T const* gamma, T const* mean, T const* rstd, T* dx,
                                        Index n, Index dim) {
    for (Index r = blockIdx.x; r < n; r += gridDim.x) {
        T const* xr = x + r * dim;
        T const* dyr = dy + r * dim;
        double const mu = mean != nullptr ? double(mean[r]) : 0.0;
        double const inv_std = rstd[r];
        double sum_g = 0;
        double sum_g_xhat = 0;
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) {
            double const g = double(dyr[j]) * double(gamma[j]);
            sum_g += g;
            sum_g_xhat += g * (double(xr[j]) - mu) * inv_std;
        }
        double const mean_g = mean != nullptr ? block_sum(sum_g) / double(dim) : 0.0;
        double const mean_g_xhat = block_sum(sum_g_xhat) / double(dim);
        T* dxr = dx + r * dim;
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) {
            double const xhat = (double(xr[j]) - mu) * inv_std;
            double const g = double(dyr[j]) * double(gamma[j]);
            dxr[j] += T(inv_std * (g - mean_g - xhat * mean_g_xhat));
        }
    }
}

/// partial (2, chunks, dim): [0] sums dy * xhat, [1] sums dy over the rows of chunk blockIdx.y, column by column.
/// mean null means xhat = x * rstd (RMSNorm).
template <class T>
__global__ void norm_column_partial_kernel(T const* dy, T const* x, T const* mean, T const* rstd, Index n, Index dim,
                                           Index rows_per_chunk, double* partial) {
    Index const j = Index(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= dim) return;
    Index const chunks = gridDim.y;
    Index const begin = Index(blockIdx.y) * rows_per_chunk;
    Index const end = begin + rows_per_chunk < n ? begin + rows_per_chunk : n;
    double dy_xhat = 0;
    double dy_sum = 0;
    for (Index r = begin; r < end; ++r) {
        double const mu = mean != nullptr ? double(mean[r]) : 0.0;
        double const d = dy[r * dim + j];
        dy_xhat += d * (double(x[r * dim + j]) - mu) * double(rstd[r]);
        dy_sum += d;
    }
    partial[Index(blockIdx.y) * dim + j] = dy_xhat;
    partial[(chunks + blockIdx.y) * dim + j] = dy_sum;
}

/// dgamma[j] += sum of the chunks' dy * xhat, dbeta[j] += sum of the chunks' dy; null skips. Block b owns columns
/// 32 b .. 32 b + 31 (lane = column); warp w sums chunks w, w + 8, ..., then warp 0 adds the 8 sums in warp order.
/// Launched with norm_finish_warps * 32 threads.
template <class T>
__global__ void norm_column_finish_kernel(double const* partial, Index chunks, Index dim, T* dgamma, T* dbeta) {
    __shared__ double sums[2][norm_finish_warps][32];
    int const lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
    Index const j = Index(blockIdx.x) * 32 + lane;
    double dy_xhat = 0;
    double dy_sum = 0;
    if (j < dim)
        for (Index c = warp; c < chunks; c += norm_finish_warps) {
            dy_xhat += partial[c * dim + j];
            dy_sum += partial[(chunks + c) * dim + j];
        }
    sums[0][warp][lane] = dy_xhat;
    sums[1][warp][lane] = dy_sum;
    __syncthreads();
    if (warp != 0 || j >= dim) return;
    dy_xhat = 0;
    dy_sum = 0;
    for (int w = 0; w < norm_finish_warps; ++w) {
        dy_xhat += sums[0][w][lane];
        dy_sum += sums[1][w][lane];
    }
    if (dgamma != nullptr) dgamma[j] += T(dy_xhat);
    if (dbeta != nullptr) dbeta[j] += T(dy_sum);
}

inline unsigned row_blocks(Index n) { return unsigned(std::clamp<Index>(n, 1, max_blocks)); }

/// Adds the column sums of dy * xhat into dgamma and of dy into dbeta (either may be null).
inline void norm_parameter_grads(Context& ctx, View<float const> dy, View<float const> x, float const* mean,
                                 float const* rstd, float* dgamma, float* dbeta) {
    Index const n = x.rows;
    Index const dim = x.cols;
    Index const chunks = norm_grad_chunks(n);  // the gridDim.y of column_partial_kernel
    Index const rows_per_chunk = (n + chunks - 1) / chunks;
    auto* partial = static_cast<double*>(ctx.scratch(norm_scratch_slot, norm_grads_bytes(n, dim)));
    dim3 const grid(unsigned((dim + block_threads - 1) / block_threads), unsigned(chunks));
    norm_column_partial_kernel<float>
        <<<grid, block_threads, 0, ctx.stream()>>>(dy.data, x.data, mean, rstd, n, dim, rows_per_chunk, partial);
    check_launch("norm_column_partial_kernel");
    norm_column_finish_kernel<float><<<unsigned((dim + 31) / 32), norm_finish_warps * 32, 0, ctx.stream()>>>(
        partial, chunks, dim, dgamma, dbeta);
    check_launch("norm_column_finish_kernel");
}

inline void check_norm_backward(View<float const> dy, View<float const> x, float const* gamma, float const* rstd,
                                char const* op) {
    require(!x.empty(), op, ": x is empty");
    require_shape(dy, x.rows, x.cols, polyalpaca::detail::concat(op, ": dy").c_str());
    require(dy.data != nullptr, op, ": dy has no data");
    require(gamma != nullptr, op, ": gamma is null");
    require(rstd != nullptr, op, ": rstd is null");
}

}  // namespace detail

/// y = (x - mean) / sqrt(var + eps) * gamma + beta per row (biased variance); stores mean (N) and
/// rstd = 1 / sqrt(var + eps) (N) when those pointers are not null.
inline void layer_norm_forward(Context& ctx, View<float const> x, float const* gamma, float const* beta, float eps,
                               View<float> y, float* mean, float* rstd) {
    detail::check_norm_input(x, y, "x", "layer_norm_forward: y", "layer_norm_forward");
    require(gamma != nullptr, "layer_norm_forward: gamma is null");
    require(beta != nullptr, "layer_norm_forward: beta is null");
    require(eps >= 0.0f, "layer_norm_forward: eps must be >= 0, got ", eps);
    ctx.make_current();
    detail::layer_norm_forward_kernel<float><<<detail::row_blocks(x.rows), detail::block_threads, 0, ctx.stream()>>>(
        x.data, nullptr, nullptr, gamma, beta, eps, y.data, mean, rstd, x.rows, x.cols);
    detail::check_launch("layer_norm_forward_kernel");
}

/// The pre-norm residual of a transformer block in one kernel: sum = x + residual, y = layer_norm(sum), mean and
/// rstd stored as layer_norm_forward does. sum is what the backward takes as x.
inline void add_layer_norm_forward(Context& ctx, View<float const> x, View<float const> residual, float const* gamma,
                                   float const* beta, float eps, View<float> sum, View<float> y, float* mean,
                                   float* rstd) {
    detail::check_norm_input(x, y, "x", "add_layer_norm_forward: y", "add_layer_norm_forward");
    detail::check_norm_input(residual, sum, "residual", "add_layer_norm_forward: sum", "add_layer_norm_forward");
    require_shape(residual, x.rows, x.cols, "add_layer_norm_forward: residual");
    require(gamma != nullptr, "add_layer_norm_forward: gamma is null");
    require(beta != nullptr, "add_layer_norm_forward: beta is null");
    require(eps >= 0.0f, "add_layer_norm_forward: eps must be >= 0, got ", eps);
    ctx.make_current();
    detail::layer_norm_forward_kernel<float><<<detail::row_blocks(x.rows), detail::block_threads, 0, ctx.stream()>>>(
        x.data, residual.data, sum.data, gamma, beta, eps, y.data, mean, rstd, x.rows, x.cols);
    detail::check_launch("layer_norm_forward_kernel");
}

/// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), dgamma += sum_rows dy * xhat, dbeta += sum_rows dy, with
/// xhat = (x - mean) * rstd and g = dy * gamma. dx, dgamma and dbeta are each skipped when null.
inline void layer_norm_backward(Context& ctx, View<float const> dy, View<float const> x, float const* gamma,
                                float const* mean, float const* rstd, View<float> dx, float* dgamma, float* dbeta) {
    detail::check_norm_backward(dy, x, gamma, rstd, "layer_norm_backward");
    require(mean != nullptr, "layer_norm_backward: mean is null");
    ctx.make_current();
    if (dx.data != nullptr) {
        require_shape(dx, x.rows, x.cols, "layer_norm_backward: dx");
        detail::norm_backward_dx_kernel<float><<<detail::row_blocks(x.rows), detail::block_threads, 0, ctx.stream()>>>(
            dy.data, x.data, gamma, mean, rstd, dx.data, x.rows, x.cols);
        detail::check_launch("norm_backward_dx_kernel");
    }
    if (dgamma == nullptr && dbeta == nullptr) return;
    detail::norm_parameter_grads(ctx, dy, x, mean, rstd, dgamma, dbeta);
}

/// y = gamma * x / sqrt(mean(x^2) + eps) per row; stores rstd = 1 / sqrt(mean(x^2) + eps) (N) when not null.
inline void rms_norm_forward(Context& ctx, View<float const> x, float const* gamma, float eps, View<float> y,
                             float* rstd) {
    detail::check_norm_input(x, y, "x", "rms_norm_forward: y", "rms_norm_forward");
    require(gamma != nullptr, "rms_norm_forward: gamma is null");
    require(eps >= 0.0f, "rms_norm_forward: eps must be >= 0, got ", eps);
    ctx.make_current();
    detail::rms_norm_forward_kernel<float><<<detail::row_blocks(x.rows), detail::block_threads, 0, ctx.stream()>>>(
        x.data, nullptr, nullptr, gamma, eps, y.data, rstd, x.rows, x.cols);
    detail::check_launch("rms_norm_forward_kernel");
}

/// sum = x + residual, then y = rms_norm(sum), in one kernel, as add_layer_norm_forward.
inline void add_rms_norm_forward(Context& ctx, View<float const> x, View<float const> residual, float const* gamma,
                                 float eps, View<float> sum, View<float> y, float* rstd) {
    detail::check_norm_input(x, y, "x", "add_rms_norm_forward: y", "add_rms_norm_forward");
    detail::check_norm_input(residual, sum, "residual", "add_rms_norm_forward: sum", "add_rms_norm_forward");
    require_shape(residual, x.rows, x.cols, "add_rms_norm_forward: residual");
    require(gamma != nullptr, "add_rms_norm_forward: gamma is null");
    require(eps >= 0.0f, "add_rms_norm_forward: eps must be >= 0, got ", eps);
    ctx.make_current();
    detail::rms_norm_forward_kernel<float><<<detail::row_blocks(x.rows), detail::block_threads, 0, ctx.stream()>>>(
        x.data, residual.data, sum.data, gamma, eps, y.data, rstd, x.rows, x.cols);
    detail::check_launch("rms_norm_forward_kernel");
}

/// dx += rstd * (g - xhat * mean(g * xhat)), dgamma += sum_rows dy * xhat, with xhat = x * rstd, g = dy * gamma.
/// dx and dgamma are each skipped when null.
inline void rms_norm_backward(Context& ctx, View<float const> dy, View<float const> x, float const* gamma,
                              float const* rstd, View<float> dx, float* dgamma) {
    detail::check_norm_backward(dy, x, gamma, rstd, "rms_norm_backward");
    ctx.make_current();
    if (dx.data != nullptr) {
        require_shape(dx, x.rows, x.cols, "rms_norm_backward: dx");
        detail::norm_backward_dx_kernel<float><<<detail::row_blocks(x.rows), detail::block_threads, 0, ctx.stream()>>>(
            dy.data, x.data, gamma, nullptr, rstd, dx.data, x.rows, x.cols);
        detail::check_launch("norm_backward_dx_kernel");
    }
    if (dgamma == nullptr) return;
    detail::norm_parameter_grads(ctx, dy, x, nullptr, rstd, dgamma, nullptr);
}

}  // namespace polyalpaca::cuda
