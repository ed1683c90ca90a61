/// @file optim/clip.hpp
/// @brief Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <algorithm>
#include <cmath>

#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// What clip_grad_norm scales the gradients by when their norm is `total`: max_norm / (total + 1e-6), or 1 when
/// that is not below 1 (torch's clip_coef_clamped).
inline double clip_coefficient(double total, double max_norm) { return std::min(1.0, max_norm / (total + 1e-6)); }

/// Scales grads (n values) in place so their L2 norm is at most max_norm, as clip_grad_norm_ with
/// norm_type 2: total = sqrt(sum g^2); clip_coef = max_norm / (total + 1e-6); grads *= clip_coef when it is
/// below 1. Returns total, the norm before clipping; n == 0 returns 0 as torch does.
/// A non-finite total (inf or NaN gradients) leaves grads untouched and is returned as is: the caller
/// decides, typically by skipping the optimizer step. Torch would instead multiply the grads by NaN or 0.
/// The squares are summed in double, so for float grads the norm is more accurate than torch's.
template <class Context, class T>
double clip_grad_norm(Context& ctx, T* grads, Index n, double max_norm) {
    require(std::isfinite(max_norm) && max_norm > 0, "clip_grad_norm: max_norm must be a positive number, got ",
            max_norm, ".");
    require(n >= 0, "clip_grad_norm: negative gradient size ", n, ".");
    if (n == 0) return 0.0;
    double const total = std::sqrt(squared_norm(ctx, static_cast<T const*>(grads), n));
    if (!std::isfinite(total)) return total;
    double const clip_coef = clip_coefficient(total, max_norm);
    if (clip_coef < 1.0) scale(ctx, grads, n, T(clip_coef));
    return total;
}

}  // namespace polyalpaca
