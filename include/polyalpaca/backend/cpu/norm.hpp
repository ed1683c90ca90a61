/// @file backend/cpu/norm.hpp
/// @brief LayerNorm (BLOOM, GPT-NeoX) and RMSNorm (LLaMA) over the last dimension, forward and backward.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "polyalpaca/backend/cpu/activation.hpp"
#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {

inline constexpr Index norm_parallel_min = Index(1) << 15;  // elements below which a norm runs on one thread

/// Sum of term(j) for j in [0, n) in double, as eight running sums (one per vector lane) added in a fixed order:
/// the compiler vectorises it where one running sum waits for each add, and the order does not depend on the data.
template <class Term>
double lane_sum(Index n, Term const& term) {
    std::array<double, 8> lanes{};
    Index j = 0;
    for (; j + 8 <= n; j += 8)
        for (Index l = 0; l < 8; ++l) lanes[std::size_t(l)] += term(j + l);
    double sum = 0;
    for (; j < n; ++j) sum += term(j);
    for (double const lane : lanes) sum += lane;
    return sum;
}

template <class T>
void check_norm_input(View<T const> x, View<T> out, char const* x_name, char const* out_name, char const* op) {
    require(!x.empty(), op, ": ", x_name, " is empty");
    require_shape(out, x.rows, x.cols, out_name);
    require(out.data != nullptr, out_name, " has no data");
}

}  // namespace detail

/// y = (x - mean) / sqrt(var + eps) * gamma + beta per row, with the biased variance (as torch).
/// Stores mean (N) and rstd = 1 / sqrt(var + eps) (N) for the backward when those pointers are not null.
/// Row statistics are accumulated in double. T is deduced from `y`.
template <class T>
void layer_norm_forward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<T const*> gamma,
                        std::type_identity_t<T const*> beta, std::type_identity_t<T> eps, View<T> y,
                        std::type_identity_t<T*> mean, std::type_identity_t<T*> rstd) {
    detail::check_norm_input<T>(x, y, "x", "layer_norm_forward: y", "layer_norm_forward");
    require(gamma != nullptr, "layer_norm_forward: gamma is null");
    require(beta != nullptr, "layer_norm_forward: beta is null");
    require(eps >= T(0), "layer_norm_forward: eps must be >= 0, got ", eps);
    Index const n = x.rows;
    Index const dim = x.cols;

#pragma omp parallel for if (n * dim >= detail::norm_parallel_min) num_threads(std::max(1, ctx.threads))
    for (Index r = 0; r < n; ++r) {
        T const* xr = x.row(r);
        T* yr = y.row(r);
        double const mu = detail::lane_sum(dim, [&](Index j) { return double(xr[j]); }) / double(dim);
        double const squares =
            detail::lane_sum(dim, [&](Index j) { return (double(xr[j]) - mu) * (double(xr[j]) - mu); });
        double const inv_std = 1.0 / std::sqrt(squares / double(dim) + double(eps));
#pragma omp simd  // the output row does not overlap the inputs
        for (Index j = 0; j < dim; ++j) yr[j] = T((double(xr[j]) - mu) * inv_std * double(gamma[j]) + double(beta[j]));
        if (mean != nullptr) mean[r] = T(mu);
        if (rstd != nullptr) rstd[r] = T(inv_std);
    }
}

/// The pre-norm residual of a transformer block in one call: sum = x + residual, then y = layer_norm(sum) with
/// mean and rstd stored as layer_norm_forward does. sum is what the backward takes as x. T is deduced from `y`.
template <class T>
void add_layer_norm_forward(Context& ctx, std::type_identity_t<View<T const>> x,
                            std::type_identity_t<View<T const>> residual, std::type_identity_t<T const*> gamma,
                            std::type_identity_t<T const*> beta, std::type_identity_t<T> eps,
                            std::type_identity_t<View<T>> sum, View<T> y, std::type_identity_t<T*> mean,
                            std::type_identity_t<T*> rstd) {
    add<T>(ctx, x, residual, sum);
    layer_norm_forward<T>(ctx, View<T const>(sum), gamma, beta, eps, y, mean, rstd);
}

/// With xhat = (x - mean) * rstd and g = dy * gamma:
/// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), dgamma += sum_rows dy * xhat, dbeta += sum_rows dy.
/// dx, dgamma and dbeta are each skipped when null. T is deduced from `dx`.
template <class T>
void layer_norm_backward(Context& ctx, std::type_identity_t<View<T const>> dy, std::type_identity_t<View<T const>> x,
                         std::type_identity_t<T const*> gamma, std::type_identity_t<T const*> mean,
                         std::type_identity_t<T const*> rstd, View<T> dx, std::type_identity_t<T*> dgamma,
                         std::type_identity_t<T*> dbeta) {
    require(!x.empty(), "layer_norm_backward: x is empty");
    require_shape(dy, x.rows, x.cols, "layer_norm_backward: dy");
    require(dy.data != nullptr, "layer_norm_backward: dy has no data");
    require(gamma != nullptr, "layer_norm_backward: gamma is null");
    require(mean != nullptr, "layer_norm_backward: mean is null");
    require(rstd != nullptr, "layer_norm_backward: rstd is null");
    Index const n = x.rows;
    Index const dim = x.cols;

    if (dx.data != nullptr) {
        require_shape(dx, n, dim, "layer_norm_backward: dx");
#pragma omp parallel for if (n * dim >= detail::norm_parallel_min) num_threads(std::max(1, ctx.threads))
        for (Index r = 0; r < n; ++r) {
            T const* xr = x.row(r);
            T const* dyr = dy.row(r);
            double const mu = mean[r];
            double const inv_std = rstd[r];
            double const sum_g = detail::lane_sum(dim, [&](Index j) { return double(dyr[j]) * double(gamma[j]); });
            double const sum_g_xhat = detail::lane_sum(
                dim, [&](Index j) { return double(dyr[j]) * double(gamma[j]) * (double(xr[j]) - mu) * inv_std; });
            double const mean_g = sum_g / double(dim);
            double const mean_g_xhat = sum_g_xhat / double(dim);
            T* dxr = dx.row(r);
#pragma omp simd  // the output row does not overlap the inputs
            for (Index j = 0; j < dim; ++j) {
                double const xhat = (double(xr[j]) - mu) * inv_std;
                double const g = double(dyr[j]) * double(gamma[j]);
                dxr[j] += T(inv_std * (g - mean_g - xhat * mean_g_xhat));
            }
        }
    }
    if (dgamma == nullptr && dbeta == nullptr) return;
    // Column sums, row by row into double accumulators (contiguous reads; a parallel version would race).
    std::vector<double> sum_dy_xhat(std::size_t(dim), 0.0);
    std::vector<double> sum_dy(std::size_t(dim), 0.0);
    for (Index r = 0; r < n; ++r) {
        T const* xr = x.row(r);
        T const* dyr = dy.row(r);
        double const mu = mean[r];
        double const inv_std = rstd[r];
#pragma omp simd  // two distinct accumulator rows
        for (Index j = 0; j < dim; ++j) {
            sum_dy_xhat[std::size_t(j)] += double(dyr[j]) * (double(xr[j]) - mu) * inv_std;
            sum_dy[std::size_t(j)] += double(dyr[j]);
        }
    }
    for (Index j = 0; j < dim; ++j) {
        if (dgamma != nullptr) dgamma[j] += T(sum_dy_xhat[std::size_t(j)]);
        if (dbeta != nullptr) dbeta[j] += T(sum_dy[std::size_t(j)]);
    }
}

/// y = gamma * x / sqrt(mean(x^2) + eps) per row; stores rstd = 1 / sqrt(mean(x^2) + eps) (N) when not null.
/// T is deduced from `y`.
template <class T>
void rms_norm_forward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<T const*> gamma,
                      std::type_identity_t<T> eps, View<T> y, std::type_identity_t<T*> rstd) {
    detail::check_norm_input<T>(x, y, "x", "rms_norm_forward: y", "rms_norm_forward");
    require(gamma != nullptr, "rms_norm_forward: gamma is null");
    require(eps >= T(0), "rms_norm_forward: eps must be >= 0, got ", eps);
    Index const n = x.rows;
    Index const dim = x.cols;

#pragma omp parallel for if (n * dim >= detail::norm_parallel_min) num_threads(std::max(1, ctx.threads))
    for (Index r = 0; r < n; ++r) {
        T const* xr = x.row(r);
        T* yr = y.row(r);
        double const squares = detail::lane_sum(dim, [&](Index j) { return double(xr[j]) * double(xr[j]); });
        double const inv_rms = 1.0 / std::sqrt(squares / double(dim) + double(eps));
#pragma omp simd  // the output row does not overlap the inputs
        for (Index j = 0; j < dim; ++j) yr[j] = T(double(gamma[j]) * double(xr[j]) * inv_rms);
        if (rstd != nullptr) rstd[r] = T(inv_rms);
    }
}

/// sum = x + residual, then y = rms_norm(sum), as add_layer_norm_forward. T is deduced from `y`.
template <class T>
void add_rms_norm_forward(Context& ctx, std::type_identity_t<View<T const>> x,
                          std::type_identity_t<View<T const>> residual, std::type_identity_t<T const*> gamma,
                          std::type_identity_t<T> eps, std::type_identity_t<View<T>> sum, View<T> y,
                          std::type_identity_t<T*> rstd) {
    add<T>(ctx, x, residual, sum);
    rms_norm_forward<T>(ctx, View<T const>(sum), gamma, eps, y, rstd);
}

/// With xhat = x * rstd and g = dy * gamma: dx += rstd * (g - xhat * mean(g * xhat)), dgamma += sum_rows dy * xhat.
/// dx and dgamma are each skipped when null. T is deduced from `dx`.
template <class T>
void rms_norm_backward(Context& ctx, std::type_identity_t<View<T const>> dy, std::type_identity_t<View<T const>> x,
                       std::type_identity_t<T const*> gamma, std::type_identity_t<T const*> rstd, View<T> dx,
                       std::type_identity_t<T*> dgamma) {
    require(!x.empty(), "rms_norm_backward: x is empty");
    require_shape(dy, x.rows, x.cols, "rms_norm_backward: dy");
    require(dy.data != nullptr, "rms_norm_backward: dy has no data");
    require(gamma != nullptr, "rms_norm_backward: gamma is null");
    require(rstd != nullptr, "rms_norm_backward: rstd is null");
    Index const n = x.rows;
    Index const dim = x.cols;

    if (dx.data != nullptr) {
        require_shape(dx, n, dim, "rms_norm_backward: dx");
#pragma omp parallel for if (n * dim >= detail::norm_parallel_min) num_threads(std::max(1, ctx.threads))
        for (Index r = 0; r < n; ++r) {
            T const* xr = x.row(r);
            T const* dyr = dy.row(r);
            double const inv_rms = rstd[r];
            double const sum_g_xhat = detail::lane_sum(
                dim, [&](Index j) { return double(dyr[j]) * double(gamma[j]) * double(xr[j]) * inv_rms; });
            double const mean_g_xhat = sum_g_xhat / double(dim);
            T* dxr = dx.row(r);
#pragma omp simd  // the output row does not overlap the inputs
            for (Index j = 0; j < dim; ++j) {
                double const g = double(dyr[j]) * double(gamma[j]);
                dxr[j] += T(inv_rms * (g - double(xr[j]) * inv_rms * mean_g_xhat));
            }
        }
    }
    if (dgamma == nullptr) return;
    std::vector<double> sum_dy_xhat(std::size_t(dim), 0.0);
    for (Index r = 0; r < n; ++r) {
        T const* xr = x.row(r);
        T const* dyr = dy.row(r);
        double const inv_rms = rstd[r];
        for (Index j = 0; j < dim; ++j) sum_dy_xhat[std::size_t(j)] += double(dyr[j]) * double(xr[j]) * inv_rms;
    }
    for (Index j = 0; j < dim; ++j) dgamma[j] += T(sum_dy_xhat[std::size_t(j)]);
}

}  // namespace polyalpaca::cpu
