/// @file backend/cpu/optim_ops.hpp
/// @brief CPU optimizer kernels: the fused AdamW update (optionally clipping and zeroing the gradients as it reads
/// them), a deterministic squared norm, in-place scaling.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// Hyperparameters of one AdamW step. `step` counts from 1 and is already incremented for this update.
struct AdamWStep {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    long step;
};

namespace detail {
/// Loops shorter than this run on one thread: spawning costs more than the work.
inline constexpr Index parallel_threshold = Index(1) << 15;
/// squared_norm sums fixed-size chunks and then the chunk sums in order, so the result does not
/// depend on the thread count.
inline constexpr Index norm_chunk = Index(1) << 14;
/// adamw_update works through chunks of this many values (four arrays of 16 KiB in fp32 stay in L2).
inline constexpr Index update_chunk = Index(1) << 12;

/// The AdamW pass of adamw_update and adamw_update_consuming: with Consume, each gradient is multiplied by
/// grad_scale as it is read and its slot then set to zero, so clipping and the next step's zeroing cost no pass of
/// their own.
template <bool Consume, class T, class Grad>
void adamw_pass(Context& ctx, T* param, Grad* grad, T* exp_avg, T* exp_avg_sq, Index n, AdamWStep const& s,
                T grad_scale) {
    require(n >= 0, "adamw_update: negative size ", n);
    require(s.step >= 1, "adamw_update: step counts from 1, got ", s.step);
    if (n == 0) return;
    require(param && grad && exp_avg && exp_avg_sq, "adamw_update: null pointer for ", n, " values");

    double const bias_correction1 = 1.0 - std::pow(s.beta1, double(s.step));
    double const bias_correction2 = 1.0 - std::pow(s.beta2, double(s.step));
    T const decay = T(1.0 - s.lr * s.weight_decay);
    T const avg_weight = T(1.0 - s.beta1);
    T const beta2 = T(s.beta2);
    T const sq_weight = T(1.0 - s.beta2);
    T const neg_step_size = T(-(s.lr / bias_correction1));
    T const bias_correction2_sqrt = T(std::sqrt(bias_correction2));
    T const eps = T(s.eps);

    // Over fixed chunks, each as Eigen array expressions: Eigen's packet sqrt and division vectorise where a plain
    // loop calling std::sqrt does not (it must keep errno), about 4x faster (docs/performance.md, "AdamW").
    Index const chunks = (n + update_chunk - 1) / update_chunk;
#pragma omp parallel for num_threads(ctx.threads) if (n >= parallel_threshold) schedule(static)
    for (Index c = 0; c < chunks; ++c) {
        Index const begin = c * update_chunk, count = std::min(update_chunk, n - begin);
        using Values = Eigen::Array<T, Eigen::Dynamic, 1>;
        Eigen::Map<Values> p(param + begin, count), m(exp_avg + begin, count), v(exp_avg_sq + begin, count);
        auto update = [&](auto const& g) {
            m += avg_weight * (g - m);
            v = v * beta2 + sq_weight * g * g;
            p = p * decay + neg_step_size * m / (v.sqrt() / bias_correction2_sqrt + eps);
        };
        if constexpr (Consume) {
            // Scaled in place while the chunk is in cache, as scale() would, so the update is the same bit for bit.
            Eigen::Map<Values> g(grad + begin, count);
            if (grad_scale != T(1)) g *= grad_scale;
            update(g);
            g.setZero();
        } else {
            update(Eigen::Map<Values const>(grad + begin, count));
        }
    }
    ctx.parameters_written(param, std::size_t(n) * sizeof(T));
}
}  // namespace detail

/// One torch.optim.AdamW step (amsgrad=False, maximize=False, single-tensor path) over n values, in one pass:
///   p *= 1 - lr*wd;  m = lerp(m, g, 1 - b1);  v = b2*v + (1 - b2)*g*g;
///   p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
/// The first moment uses torch's lerp form m + (1-b1)(g - m), equal to b1*m + (1-b1)*g up to rounding.
/// Arithmetic is in T, as torch's CPU kernels do for float tensors.
template <class T>
void adamw_update(Context& ctx, T* param, T const* grad, T* exp_avg, T* exp_avg_sq, Index n, AdamWStep const& s) {
    detail::adamw_pass<false>(ctx, param, grad, exp_avg, exp_avg_sq, n, s, T(1));
}

/// adamw_update with the gradients g = grad[i] * grad_scale (clip_grad_norm's scaling, 1 for none), leaving
/// grad zero for the next step's accumulation: the same update as scale(), adamw_update() and zeroing one after
/// the other, bit for bit, in one pass over memory instead of three.
template <class T>
void adamw_update_consuming(Context& ctx, T* param, T* grad, T* exp_avg, T* exp_avg_sq, Index n,
                            AdamWStep const& s, T grad_scale) {
    detail::adamw_pass<true>(ctx, param, grad, exp_avg, exp_avg_sq, n, s, grad_scale);
}

/// Sum of x[i]^2, accumulated in double. Deterministic: the same for any thread count.
template <class T>
double squared_norm(Context& ctx, T const* x, Index n) {
    require(n >= 0, "squared_norm: negative size ", n);
    if (n == 0) return 0.0;
    require(x != nullptr, "squared_norm: null pointer for ", n, " values");

    Index const chunks = (n + detail::norm_chunk - 1) / detail::norm_chunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel for num_threads(ctx.threads) if (n >= detail::parallel_threshold) schedule(static)
    for (Index c = 0; c < chunks; ++c) {
        Index const end = std::min(n, (c + 1) * detail::norm_chunk);
        // Eight running sums, one per lane: the compiler vectorises them, and their order is fixed whatever the
        // data's alignment.
        std::array<double, 8> lanes{};
        Index i = c * detail::norm_chunk;
        for (; i + 8 <= end; i += 8)
            for (Index l = 0; l < 8; ++l) lanes[std::size_t(l)] += double(x[i + l]) * double(x[i + l]);
        double sum = 0.0;
        for (; i < end; ++i) sum += double(x[i]) * double(x[i]);
        for (double const lane : lanes) sum += lane;
        partial[static_cast<std::size_t>(c)] = sum;
    }
    double total = 0.0;
    for (double const p : partial) total += p;
    return total;
}

/// x[i] *= factor for i in [0, n).
template <class T>
void scale(Context& ctx, T* x, Index n, T factor) {
    require(n >= 0, "scale: negative size ", n);
    if (n == 0) return;
    require(x != nullptr, "scale: null pointer for ", n, " values");
#pragma omp parallel for num_threads(ctx.threads) if (n >= detail::parallel_threshold) schedule(static)
    for (Index i = 0; i < n; ++i) x[i] *= factor;
    ctx.parameters_written(x, std::size_t(n) * sizeof(T));  // may scale weights, not only gradients
}

}  // namespace polyalpaca::cpu
