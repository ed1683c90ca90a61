/// @file backend/cpu/linear.hpp
/// @brief Dense layer y = x W^T + b with HF (out, in) weights, as Eigen GEMMs.
#pragma once

#include <type_traits>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {
/// Calls with at most this many rows (incremental decoding) take dot products instead of a GEMM: a GEMM over so
/// few rows spends most of its time packing the whole weight matrix on every call, while the dot products read
/// each weight row once for all rows.
inline constexpr Index linear_few_rows = 8;
}  // namespace detail

/// y = x W^T + b, or y += x W^T + b when `accumulate`. bias may be nullptr. y must not alias x or w.
/// T is deduced from `y`; x and w convert from mutable views.
template <class T>
void linear_forward([[maybe_unused]] Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> w,
                    std::type_identity_t<T const*> bias, View<T> y, bool accumulate = false) {
    require(!x.empty(), "linear_forward: x is empty");
    require(!w.empty(), "linear_forward: w is empty");
    Index const n = x.rows;
    Index const out_features = w.rows;
    require_shape(w, out_features, x.cols, "linear_forward: w");  // (Out, In)
    require_shape(y, n, out_features, "linear_forward: y");       // (N, Out)
    require(y.data != nullptr, "linear_forward: y has no data");

    if (n <= detail::linear_few_rows) {
        auto const xm = x.map();  // (N, In)
        auto const wm = w.map();  // (Out, In)
        [[maybe_unused]] bool const parallel = out_features * x.cols * n >= (Index(1) << 18);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (parallel)
        for (Index o = 0; o < out_features; ++o) {
            for (Index r = 0; r < n; ++r) {
                T const v = wm.row(o).dot(xm.row(r)) + (bias != nullptr ? bias[o] : T(0));
                y.row(r)[o] = accumulate ? y.row(r)[o] + v : v;
            }
        }
        return;
    }
    auto ym = y.map();
    if (accumulate)
        ym.noalias() += x.map() * w.map().transpose();
    else
        ym.noalias() = x.map() * w.map().transpose();
    if (bias != nullptr) ym.rowwise() += Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic> const>(bias, out_features);
}

/// dx += dy W, dw += dy^T x, dbias += column sums of dy. Each output is skipped when its data is nullptr.
/// T is deduced from dx and dw; at least one of them must be a typed View<T> (or call linear_backward<T>).
template <class T>
void linear_backward(Context&, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> w,
                     std::type_identity_t<View<T const>> dy, View<T> dx, View<T> dw, std::type_identity_t<T*> dbias) {
    require(!x.empty(), "linear_backward: x is empty");
    require(!w.empty(), "linear_backward: w is empty");
    Index const n = x.rows;
    Index const in_features = x.cols;
    Index const out_features = w.rows;
    require_shape(w, out_features, in_features, "linear_backward: w");  // (Out, In)
    require_shape(dy, n, out_features, "linear_backward: dy");          // (N, Out)
    require(dy.data != nullptr, "linear_backward: dy has no data");

    if (dx.data != nullptr) {
        require_shape(dx, n, in_features, "linear_backward: dx");  // (N, In)
        dx.map().noalias() += dy.map() * w.map();
    }
    if (dw.data != nullptr) {
        require_shape(dw, out_features, in_features, "linear_backward: dw");  // (Out, In)
        dw.map().noalias() += dy.map().transpose() * x.map();
    }
    if (dbias != nullptr)
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(dbias, out_features) += dy.map().colwise().sum();
}

}  // namespace polyalpaca::cpu
