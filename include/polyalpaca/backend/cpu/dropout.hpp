/// @file backend/cpu/dropout.hpp
/// @brief Inverted dropout with a stored mask, drawn from polyalpaca::Rng so runs are reproducible.
#pragma once

#include <algorithm>
#include <type_traits>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// mask = 0 with probability p, else 1 / (1 - p); y = x * mask. p must lie in [0, 1).
/// p = 0 copies x and fills mask with 1 without drawing from rng. The mask is drawn serially, one
/// uniform per element in row-major order, so it depends only on the rng state, not on the thread count.
/// y may alias x. T is deduced from y and mask.
template <class T>
void dropout_forward(Context&, std::type_identity_t<View<T const>> x, View<T> y, View<T> mask,
                     std::type_identity_t<T> p, Rng& rng) {
    require(p >= T(0) && p < T(1), "dropout_forward: p must be in [0, 1), got ", p);
    require(!x.empty(), "dropout_forward: x is empty");
    require_shape(y, x.rows, x.cols, "dropout_forward: y");
    require(y.data != nullptr, "dropout_forward: y has no data");
    require_shape(mask, x.rows, x.cols, "dropout_forward: mask");
    require(mask.data != nullptr, "dropout_forward: mask has no data");
    Index const n = x.size();
    if (p == T(0)) {
        std::fill_n(mask.data, n, T(1));
        if (y.data != x.data) std::copy_n(x.data, n, y.data);
        return;
    }
    double const drop = double(p);
    T const keep_scale = T(1) / (T(1) - p);
    for (Index i = 0; i < n; ++i) {
        mask.data[i] = rng.uniform() < drop ? T(0) : keep_scale;
        y.data[i] = x.data[i] * mask.data[i];
    }
}

/// dx += dy * mask. Skipped when dx is null. T is deduced from dx.
template <class T>
void dropout_backward(Context&, std::type_identity_t<View<T const>> dy, std::type_identity_t<View<T const>> mask,
                      View<T> dx) {
    require(!dy.empty(), "dropout_backward: dy is empty");
    require_shape(mask, dy.rows, dy.cols, "dropout_backward: mask");
    require(mask.data != nullptr, "dropout_backward: mask has no data");
    if (dx.data == nullptr) return;
    require_shape(dx, dy.rows, dy.cols, "dropout_backward: dx");
    dx.flat().array() += dy.flat().array() * mask.flat().array();
}

}  // namespace polyalpaca::cpu
