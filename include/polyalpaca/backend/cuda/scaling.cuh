/// @file backend/cuda/scaling.cuh
/// @brief Per-column scales and their reductions on the GPU; same names, arguments and checks as
///        backend/cpu/scaling.hpp. The reductions give one thread a whole column or row: the vectors they serve
///        (IA3's scales, DoRA's magnitudes) are a few thousand values per adapted projection.
#pragma once

#include <cmath>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

struct ScaleColumns {
    float const* x;
    float const* v;
    float const* shift;
    float* y;
    Index cols;
    __device__ void operator()(Index i) const {
        Index const j = i % cols;
        y[i] = x[i] * v[j] + (shift != nullptr ? shift[j] : 0.0f);
    }
};
struct ColumnDots {
    float const* a;
    float const* b;
    float* out;
    Index rows, cols;
    __device__ void operator()(Index j) const {
        float sum = 0.0f;
        for (Index i = 0; i < rows; ++i) sum += a[i * cols + j] * b[i * cols + j];
        out[j] += sum;
    }
};
struct RowNorms {
    float const* m;
    float* out;
    Index cols;
    __device__ void operator()(Index i) const {
        float sum = 0.0f;
        for (Index j = 0; j < cols; ++j) sum += m[i * cols + j] * m[i * cols + j];
        out[i] = sqrtf(sum);
    }
};
struct Divide {
    float const* a;
    float const* b;
    float* out;
    __device__ void operator()(Index i) const { out[i] = a[i] / b[i]; }
};

}  // namespace detail

/// y[i, j] = x[i, j] * v[j] + shift[j] (shift may be nullptr). y may alias x.
inline void scale_columns(Context& ctx, View<float const> x, float const* v, float const* shift, View<float> y) {
    require(!x.empty() && x.data != nullptr, "scale_columns: x is empty");
    require(v != nullptr, "scale_columns: v has no data");
    require_shape(y, x.rows, x.cols, "scale_columns: y");
    require(y.data != nullptr, "scale_columns: y has no data");
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::ScaleColumns{x.data, v, shift, y.data, x.cols}, "scale_columns");
}

/// out[j] += sum_i a[i, j] b[i, j].
inline void column_dots(Context& ctx, View<float const> a, View<float const> b, float* out) {
    require(!a.empty() && a.data != nullptr, "column_dots: a is empty");
    require_shape(b, a.rows, a.cols, "column_dots: b");
    require(b.data != nullptr, "column_dots: b has no data");
    require(out != nullptr, "column_dots: out has no data");
    ctx.make_current();
    detail::for_each(ctx, a.cols, detail::ColumnDots{a.data, b.data, out, a.rows, a.cols}, "column_dots");
}

/// out[i] = the Euclidean norm of row i of m.
inline void row_norms(Context& ctx, View<float const> m, float* out) {
    require(!m.empty() && m.data != nullptr, "row_norms: m is empty");
    require(out != nullptr, "row_norms: out has no data");
    ctx.make_current();
    detail::for_each(ctx, m.rows, detail::RowNorms{m.data, out, m.cols}, "row_norms");
}

/// out[i] = a[i] / b[i] for i < n; out may alias a or b.
inline void divide(Context& ctx, float const* a, float const* b, float* out, Index n) {
    require(n >= 0, "divide: negative length ", n);
    if (n == 0) return;
    require(a != nullptr && b != nullptr && out != nullptr, "divide: a, b or out has no data");
    ctx.make_current();
    detail::for_each(ctx, n, detail::Divide{a, b, out}, "divide");
}

}  // namespace polyalpaca::cuda
