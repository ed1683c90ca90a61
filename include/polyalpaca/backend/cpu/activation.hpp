/// @file backend/cpu/activation.hpp
/// @brief Elementwise ops: GELU (tanh and erf), SiLU, SwiGLU, residual add, and gradient accumulation. The ops
/// built on exp (SiLU, SwiGLU, the erf GELU's backward) evaluate it in double over blocks, vectorised
/// (exp_blocks.hpp); the tanh GELU evaluates it in its own type over the same blocks, and the erf GELU takes erf from
/// Eigen's vectorised kernel.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <type_traits>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/exp_blocks.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {

inline constexpr Index elementwise_parallel_min = Index(1) << 16;  // elements below which one thread is faster

/// Calls f(i) for i in [0, n), over OpenMP threads when n is large enough to pay for them.
template <class F>
void for_each_element(Context& ctx, Index n, F const& f) {
#pragma omp parallel for if (n >= elementwise_parallel_min) num_threads(std::max(1, ctx.threads))
    for (Index i = 0; i < n; ++i) f(i);
}

/// Throws unless `in` holds data and `out` (named `out_name`) has its shape and holds data.
template <class T>
void check_elementwise(View<T const> in, char const* in_name, View<T> out, char const* out_name) {
    require(!in.empty(), in_name, " is empty");
    require_shape(out, in.rows, in.cols, out_name);
    require(out.data != nullptr, out_name, " has no data");
}

/// Checks a backward's input x and upstream gradient dy; returns whether dx should be written (not null).
template <class T>
bool check_elementwise_backward(View<T const> x, View<T const> dy, View<T> dx, char const* op) {
    require(!x.empty(), op, ": x is empty");
    require_shape(dy, x.rows, x.cols, polyalpaca::detail::concat(op, ": dy").c_str());
    require(dy.data != nullptr, op, ": dy has no data");
    if (dx.data == nullptr) return false;
    require_shape(dx, x.rows, x.cols, polyalpaca::detail::concat(op, ": dx").c_str());
    return true;
}

/// Calls f(i, s) for i in [0, n) with s = sigmoid(x[i]) = 1 / (1 + exp(-x[i])), evaluated in double.
template <class T, class F>
void for_each_sigmoid(Context& ctx, T const* x, Index n, F const& f) {
    for_each_exp_block(ctx, n, [&](Index begin, Index count) {
        alignas(64) double e[exp_block];
        for (Index i = 0; i < count; ++i) e[i] = -double(x[begin + i]);
        exp_in_place(e, count);
#pragma omp simd  // f writes element begin + i only
        for (Index i = 0; i < count; ++i) f(begin + i, T(1.0 / (1.0 + e[i])));
    });
}

/// Calls f(i, t, s) for i in [0, n) with t = tanh(u) and (when WithSech2; else 0) s = 1 - t^2 of the tanh GELU's
/// argument u = c x (1 + k x^2), both from e = exp(2u): t = 1 - 2 / (e + 1), s = 4 e / (e + 1)^2, which keeps s
/// accurate where 1 - t^2 would cancel. exp is Eigen's vectorised kernel in T: in float, 5x faster than the double
/// exp this took before and as accurate for the GELU (docs/performance.md, "The tanh GELU in float").
template <bool WithSech2, class T, class F>
void for_each_gelu_tanh(Context& ctx, T const* x, T c, T k, Index n, F const& f) {
    for_each_exp_block(ctx, n, [&](Index begin, Index count) {
        using Values = Eigen::Array<T, Eigen::Dynamic, 1>;
        alignas(64) T e[exp_block];
        Eigen::Map<Values const> const v(x + begin, count);
        // exp(+-80) and its square stay finite in float
        Eigen::Map<Values>(e, count) = (T(2) * c * v * (T(1) + k * v * v)).max(T(-80)).min(T(80)).exp();
#pragma omp simd  // f writes element begin + i only
        for (Index i = 0; i < count; ++i) {
            T const d = e[i] + T(1);
            if constexpr (WithSech2)
                f(begin + i, T(1) - T(2) / d, T(4) * e[i] / (d * d));
            else
                f(begin + i, T(1) - T(2) / d, T(0));
        }
    });
}

/// Calls f(i, erf(x_i / sqrt 2), exp(-x_i^2 / 2)) for every i in [0, n), over blocks as for_each_exp_block; the
/// exp only when `with_gauss` (else 0). erf is Eigen's vectorised kernel: in float a rational approximation within
/// 7.4 ulp of the exact (double) erf on N(0, 2) inputs, much faster than std::erf (docs/performance.md, "The exact
/// GELU"); in double, std::erf.
template <class T, class F>
void for_each_gelu_erf(Context& ctx, T const* x, Index n, bool with_gauss, F const& f) {
    for_each_exp_block(ctx, n, [&](Index begin, Index count) {
        alignas(64) T u[exp_block];
        alignas(64) double gauss[exp_block];
        for (Index i = 0; i < count; ++i) u[i] = x[begin + i] * T(1 / std::numbers::sqrt2);
        Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> erfs(u, count);
        erfs = erfs.erf();
        if (with_gauss) {
            for (Index i = 0; i < count; ++i) gauss[i] = -0.5 * double(x[begin + i]) * double(x[begin + i]);
            exp_in_place(gauss, count);
        }
#pragma omp simd  // f writes element begin + i only
        for (Index i = 0; i < count; ++i) f(begin + i, u[i], with_gauss ? T(gauss[i]) : T(0));
    });
}

// GELU tanh approximation constants, as BLOOM writes them: sqrt(2 / pi) ~ 0.79788456 and the cubic coefficient.
inline constexpr double gelu_tanh_scale = 0.79788456;
inline constexpr double gelu_tanh_cubic = 0.044715;

}  // namespace detail

/// y = 0.5 x (1 + tanh(0.79788456 x (1 + 0.044715 x^2))). T is deduced from `y`.
template <class T>
void gelu_tanh_forward(Context& ctx, std::type_identity_t<View<T const>> x, View<T> y) {
    detail::check_elementwise<T>(x, "gelu_tanh_forward: x", y, "gelu_tanh_forward: y");
    T const c = T(detail::gelu_tanh_scale);
    T const k = T(detail::gelu_tanh_cubic);
    T const* xs = x.data;
    T* ys = y.data;
    detail::for_each_gelu_tanh<false>(ctx, xs, c, k, x.size(),
                                      [&](Index i, T t, T) { ys[i] = T(0.5) * xs[i] * (T(1) + t); });
}

/// dx += dy * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2)), t = tanh(c x (1 + k x^2)). Skipped when dx is null.
template <class T>
void gelu_tanh_backward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> dy,
                        View<T> dx) {
    if (!detail::check_elementwise_backward<T>(x, dy, dx, "gelu_tanh_backward")) return;
    T const c = T(detail::gelu_tanh_scale);
    T const k = T(detail::gelu_tanh_cubic);
    T const* xs = x.data;
    T const* dys = dy.data;
    T* dxs = dx.data;
    detail::for_each_gelu_tanh<true>(ctx, xs, c, k, x.size(), [&](Index i, T t, T sech2) {
        T const v = xs[i];
        T const slope = T(0.5) * (T(1) + t) + T(0.5) * v * sech2 * c * (T(1) + T(3) * k * v * v);
        dxs[i] += dys[i] * slope;
    });
}

/// y = 0.5 x (1 + erf(x / sqrt 2)) (exact GELU). T is deduced from `y`.
template <class T>
void gelu_erf_forward(Context& ctx, std::type_identity_t<View<T const>> x, View<T> y) {
    detail::check_elementwise<T>(x, "gelu_erf_forward: x", y, "gelu_erf_forward: y");
    T const* xs = x.data;
    T* ys = y.data;
    detail::for_each_gelu_erf(ctx, xs, x.size(), false,
                              [&](Index i, T erf_u, T) { ys[i] = T(0.5) * xs[i] * (T(1) + erf_u); });
}

/// dx += dy * (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)). Skipped when dx is null.
template <class T>
void gelu_erf_backward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> dy,
                       View<T> dx) {
    if (!detail::check_elementwise_backward<T>(x, dy, dx, "gelu_erf_backward")) return;
    T const inv_sqrt_2pi = T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    T const* xs = x.data;
    T const* dys = dy.data;
    T* dxs = dx.data;
    detail::for_each_gelu_erf(ctx, xs, x.size(), true, [&](Index i, T erf_u, T gauss) {
        dxs[i] += dys[i] * (T(0.5) * (T(1) + erf_u) + xs[i] * gauss * inv_sqrt_2pi);
    });
}

/// y = x * sigmoid(x). T is deduced from `y`.
template <class T>
void silu_forward(Context& ctx, std::type_identity_t<View<T const>> x, View<T> y) {
    detail::check_elementwise<T>(x, "silu_forward: x", y, "silu_forward: y");
    T const* xs = x.data;
    T* ys = y.data;
    detail::for_each_sigmoid(ctx, xs, x.size(), [&](Index i, T s) { ys[i] = xs[i] * s; });
}

/// dx += dy * s (1 + x (1 - s)), s = sigmoid(x). Skipped when dx is null.
template <class T>
void silu_backward(Context& ctx, std::type_identity_t<View<T const>> x, std::type_identity_t<View<T const>> dy,
                   View<T> dx) {
    if (!detail::check_elementwise_backward<T>(x, dy, dx, "silu_backward")) return;
    T const* xs = x.data;
    T const* dys = dy.data;
    T* dxs = dx.data;
    detail::for_each_sigmoid(ctx, xs, x.size(),
                             [&](Index i, T s) { dxs[i] += dys[i] * s * (T(1) + xs[i] * (T(1) - s)); });
}

/// out = silu(gate) * up (LLaMA MLP). T is deduced from `out`.
template <class T>
void swiglu_forward(Context& ctx, std::type_identity_t<View<T const>> gate, std::type_identity_t<View<T const>> up,
                    View<T> out) {
    detail::check_elementwise<T>(gate, "swiglu_forward: gate", out, "swiglu_forward: out");
    require_shape(up, gate.rows, gate.cols, "swiglu_forward: up");
    require(up.data != nullptr, "swiglu_forward: up has no data");
    T const* gs = gate.data;
    T const* us = up.data;
    T* os = out.data;
    detail::for_each_sigmoid(ctx, gs, gate.size(), [&](Index i, T s) { os[i] = gs[i] * s * us[i]; });
}

/// dgate += dout * up * silu'(gate), dup += dout * silu(gate); each skipped when null.
/// T is deduced from dgate and dup; at least one must be a typed View<T> (or call swiglu_backward<T>).
template <class T>
void swiglu_backward(Context& ctx, std::type_identity_t<View<T const>> gate, std::type_identity_t<View<T const>> up,
                     std::type_identity_t<View<T const>> dout, View<T> dgate, View<T> dup) {
    require(!gate.empty(), "swiglu_backward: gate is empty");
    require_shape(up, gate.rows, gate.cols, "swiglu_backward: up");
    require(up.data != nullptr, "swiglu_backward: up has no data");
    require_shape(dout, gate.rows, gate.cols, "swiglu_backward: dout");
    require(dout.data != nullptr, "swiglu_backward: dout has no data");
    if (dgate.data != nullptr) require_shape(dgate, gate.rows, gate.cols, "swiglu_backward: dgate");
    if (dup.data != nullptr) require_shape(dup, gate.rows, gate.cols, "swiglu_backward: dup");
    T const* gs = gate.data;
    T const* us = up.data;
    T const* ds = dout.data;
    T* dgs = dgate.data;
    T* dus = dup.data;
    detail::for_each_sigmoid(ctx, gs, gate.size(), [&](Index i, T s) {
        T const g = gs[i];
        if (dgs != nullptr) dgs[i] += ds[i] * us[i] * s * (T(1) + g * (T(1) - s));
        if (dus != nullptr) dus[i] += ds[i] * g * s;
    });
}

/// out = a + b (residual connection); out may alias a or b. T is deduced from `out`.
template <class T>
void add(Context& ctx, std::type_identity_t<View<T const>> a, std::type_identity_t<View<T const>> b, View<T> out) {
    detail::check_elementwise<T>(a, "add: a", out, "add: out");
    require_shape(b, a.rows, a.cols, "add: b");
    require(b.data != nullptr, "add: b has no data");
    T const* as = a.data;
    T const* bs = b.data;
    T* os = out.data;
    detail::for_each_element(ctx, a.size(), [&](Index i) { os[i] = as[i] + bs[i]; });
}

/// dst += src (gradients meeting at a branch). T is deduced from `dst`.
template <class T>
void accumulate(Context& ctx, std::type_identity_t<View<T const>> src, View<T> dst) {
    detail::check_elementwise<T>(src, "accumulate: src", dst, "accumulate: dst");
    T const* ss = src.data;
    T* ds = dst.data;
    detail::for_each_element(ctx, src.size(), [&](Index i) { ds[i] += ss[i]; });
}

}  // namespace polyalpaca::cpu
