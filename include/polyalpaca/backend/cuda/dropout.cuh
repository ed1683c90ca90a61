/// @file backend/cuda/dropout.cuh
/// @brief Inverted dropout with a stored mask on the GPU; same names, arguments and checks as
/// backend/cpu/dropout.hpp. Each call draws one 64-bit seed from the host Rng; element i's uniform is a
/// SplitMix64 hash of (seed, i), so the mask is reproducible and independent of the launch configuration, but it
/// is a different stream from the CPU's (which draws one uniform per element from the Rng itself).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// A uniform double in [0, 1) from (seed, counter): the SplitMix64 output function on seed + (counter + 1) * phi.
__device__ inline double counter_uniform(std::uint64_t seed, std::uint64_t counter) {
    std::uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return double(z >> 11) * 0x1.0p-53;
}

struct DropoutForward {
    float const* x;
    float* y;
    float* mask;
    std::uint64_t seed;
    double drop;
    float keep_scale;
    __device__ void operator()(Index i) const {
        float const m = counter_uniform(seed, std::uint64_t(i)) < drop ? 0.0f : keep_scale;
        mask[i] = m;
        y[i] = x[i] * m;
    }
};
struct DropoutBackward {
    float const* dy;
    float const* mask;
    float* dx;
    __device__ void operator()(Index i) const { dx[i] += dy[i] * mask[i]; }
};

}  // namespace detail

/// mask = 0 with probability p, else 1 / (1 - p); y = x * mask. p must lie in [0, 1). p = 0 copies x and fills
/// mask with 1 without drawing from rng; otherwise exactly one next_u64() is drawn. y may alias x.
inline void dropout_forward(Context& ctx, View<float const> x, View<float> y, View<float> mask, float p, Rng& rng) {
    require(p >= 0.0f && p < 1.0f, "dropout_forward: p must be in [0, 1), got ", p);
    require(!x.empty(), "dropout_forward: x is empty");
    require_shape(y, x.rows, x.cols, "dropout_forward: y");
    require(y.data != nullptr, "dropout_forward: y has no data");
    require_shape(mask, x.rows, x.cols, "dropout_forward: mask");
    require(mask.data != nullptr, "dropout_forward: mask has no data");
    Index const n = x.size();
    std::uint64_t const seed = p == 0.0f ? 0 : rng.next_u64();
    // With drop = 0 no uniform is below it: every mask entry is keep_scale = 1.
    detail::DropoutForward const op{x.data, y.data, mask.data, seed, double(p), 1.0f / (1.0f - p)};
    ctx.make_current();
    detail::for_each(ctx, n, op, "dropout_forward");
}

/// dx += dy * mask. Skipped when dx is null.
inline void dropout_backward(Context& ctx, View<float const> dy, View<float const> mask, View<float> dx) {
    require(!dy.empty(), "dropout_backward: dy is empty");
    require_shape(mask, dy.rows, dy.cols, "dropout_backward: mask");
    require(mask.data != nullptr, "dropout_backward: mask has no data");
    if (dx.data == nullptr) return;
    require_shape(dx, dy.rows, dy.cols, "dropout_backward: dx");
    ctx.make_current();
    detail::for_each(ctx, dy.size(), detail::DropoutBackward{dy.data, mask.data, dx.data}, "dropout_backward");
}

}  // namespace polyalpaca::cuda
