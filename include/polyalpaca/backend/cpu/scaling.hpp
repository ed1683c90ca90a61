/// @file backend/cpu/scaling.hpp
/// @brief Per-column scales and their reductions, the ops of the scaling adapters (IA3's scale vectors, DoRA's
///        magnitude over the row norms of its combined weight).
#pragma once

#include <cmath>
#include <type_traits>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// y[i, j] = x[i, j] * v[j] + shift[j]: every row scaled by the vector v (x.cols values), then shifted (shift may be
/// nullptr). y may alias x. T is deduced from y.
template <class T>
void scale_columns(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<T const*> v,
                   std::type_identity_t<T const*> shift, View<T> y) {
    require(!x.empty() && x.data != nullptr, "scale_columns: x is empty");
    require(v != nullptr, "scale_columns: v has no data");
    require_shape(y, x.rows, x.cols, "scale_columns: y");
    require(y.data != nullptr, "scale_columns: y has no data");
    Index const rows = x.rows, cols = x.cols;
    [[maybe_unused]] bool const parallel = x.size() >= (Index(1) << 16);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (parallel)
    for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < cols; ++j)
            y.data[i * cols + j] = x.data[i * cols + j] * v[j] + (shift != nullptr ? shift[j] : T(0));
}

/// out[j] += sum_i a[i, j] b[i, j]: the gradient of a per-column scale (out has a.cols values). T is deduced from
/// out.
template <class T>
void column_dots(Context& ctx, std::type_identity_t<View<T const>> a, std::type_identity_t<View<T const>> b, T* out) {
    require(!a.empty() && a.data != nullptr, "column_dots: a is empty");
    require_shape(b, a.rows, a.cols, "column_dots: b");
    require(b.data != nullptr, "column_dots: b has no data");
    require(out != nullptr, "column_dots: out has no data");
    Index const rows = a.rows, cols = a.cols;
    [[maybe_unused]] bool const parallel = a.size() >= (Index(1) << 16);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (parallel)
    for (Index j = 0; j < cols; ++j) {
        T sum = 0;
        for (Index i = 0; i < rows; ++i) sum += a.data[i * cols + j] * b.data[i * cols + j];
        out[j] += sum;
    }
}

/// out[i] = the Euclidean norm of row i of m (m.rows values). T is deduced from out.
template <class T>
void row_norms(Context& ctx, std::type_identity_t<View<T const>> m, T* out) {
    require(!m.empty() && m.data != nullptr, "row_norms: m is empty");
    require(out != nullptr, "row_norms: out has no data");
    auto const mm = m.map();
    [[maybe_unused]] bool const parallel = m.size() >= (Index(1) << 16);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (parallel)
    for (Index i = 0; i < m.rows; ++i) out[i] = mm.row(i).norm();
}

/// out[i] = a[i] / b[i] for i < n; out may alias a or b. T is deduced from out.
template <class T>
void divide(Context&, std::type_identity_t<T const*> a, std::type_identity_t<T const*> b, T* out, Index n) {
    require(n >= 0, "divide: negative length ", n);
    require(n == 0 || (a != nullptr && b != nullptr && out != nullptr), "divide: a, b or out has no data");
    for (Index i = 0; i < n; ++i) out[i] = a[i] / b[i];
}

}  // namespace polyalpaca::cpu
