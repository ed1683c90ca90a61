/// @file backend/cpu/rope.hpp
/// @brief Rotary position embedding (RoPE), in place, in the HF rotate-half or the Meta adjacent-pairs layout.
#pragma once

#include <cmath>
#include <vector>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {

template <class T>
void check_rope_input(View<T> const& x, int seq, int position_offset, RopeSpec const& spec, char const* what) {
    require(spec.heads > 0, what, ": heads must be positive, got ", spec.heads);
    require(spec.head_dim > 0, what, ": head_dim must be positive, got ", spec.head_dim);
    require(spec.rotary_dim % 2 == 0, what, ": rotary_dim must be even, got ", spec.rotary_dim);
    require(spec.rotary_dim > 0 && spec.rotary_dim <= spec.head_dim, what, ": rotary_dim must be in (0, head_dim = ",
            spec.head_dim, "], got ", spec.rotary_dim);
    require(spec.base > 0, what, ": base must be positive, got ", spec.base);
    require(seq > 0, what, ": seq must be positive, got ", seq);
    require(position_offset >= 0, what, ": position_offset must not be negative, got ", position_offset);
    require(x.cols == Index(spec.heads) * spec.head_dim, what, ": x has ", x.cols, " columns but heads * head_dim = ",
            Index(spec.heads) * spec.head_dim);
    require(x.rows > 0 && x.data != nullptr, what, ": x is an empty batch (no rows)");
    require(x.rows % seq == 0, what, ": x has ", x.rows, " rows, which is not a multiple of seq = ", seq);
}

/// Turns every rotary pair of x by +angle (direction 1) or -angle (direction -1).
template <class T>
void rope_rotate([[maybe_unused]] Context& ctx, View<T> x, int seq, int position_offset, RopeSpec const& spec,
                 double direction) {
    int const half = spec.rotary_dim / 2;
    // cos/sin per (position, pair), computed in double and rounded once to T.
    std::vector<T> cos_table(std::size_t(seq) * half);  // (seq, half)
    std::vector<T> sin_table(std::size_t(seq) * half);  // (seq, half)
    for (int i = 0; i < half; ++i) {
        double const inv_freq = std::pow(spec.base, -2.0 * i / spec.rotary_dim);
        for (int p = 0; p < seq; ++p) {
            double const angle = double(p + position_offset) * inv_freq;
            cos_table[std::size_t(p) * half + i] = T(std::cos(angle));
            sin_table[std::size_t(p) * half + i] = T(direction * std::sin(angle));
        }
    }
    bool const rotate_half = spec.style == RopeStyle::RotateHalf;
    // Smaller calls run on one thread: starting a parallel region would cost more than it saves.
    [[maybe_unused]] bool const parallel = x.rows * spec.heads * spec.rotary_dim >= (Index(1) << 15);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (parallel)
    for (Index r = 0; r < x.rows; ++r) {
        T const* cos_row = cos_table.data() + (r % seq) * half;
        T const* sin_row = sin_table.data() + (r % seq) * half;
        for (int h = 0; h < spec.heads; ++h) {
            T* head = x.row(r) + Index(h) * spec.head_dim;
            // Each pair (a, b) becomes (a cos - b sin, a sin + b cos).
            if (rotate_half) {
                for (int i = 0; i < half; ++i) {
                    T const a = head[i];
                    T const b = head[i + half];
                    head[i] = a * cos_row[i] - b * sin_row[i];
                    head[i + half] = a * sin_row[i] + b * cos_row[i];
                }
            } else {
                for (int i = 0; i < half; ++i) {
                    T const a = head[2 * i];
                    T const b = head[2 * i + 1];
                    head[2 * i] = a * cos_row[i] - b * sin_row[i];
                    head[2 * i + 1] = a * sin_row[i] + b * cos_row[i];
                }
            }
        }
    }
}

}  // namespace detail

/// Rotates x (N, heads * head_dim) in place; row r sits at position r % seq + position_offset.
template <class T>
void rope_forward(Context& ctx, View<T> x, int seq, int position_offset, RopeSpec const& spec) {
    detail::check_rope_input(x, seq, position_offset, spec, "rope_forward");
    detail::rope_rotate(ctx, x, seq, position_offset, spec, 1.0);
}

/// The gradient of rope_forward: the inverse (transposed) rotation of dx (N, heads * head_dim), in place.
template <class T>
void rope_backward(Context& ctx, View<T> dx, int seq, int position_offset, RopeSpec const& spec) {
    detail::check_rope_input(dx, seq, position_offset, spec, "rope_backward");
    detail::rope_rotate(ctx, dx, seq, position_offset, spec, -1.0);
}

}  // namespace polyalpaca::cpu
