/// @file backend/cuda/activation.cuh
/// @brief Elementwise ops on the GPU: GELU (tanh and erf), SiLU, SwiGLU, residual add, gradient accumulation.
/// Same names, arguments, formulas and checks as backend/cpu/activation.hpp; fp32 arithmetic, one thread per
/// element in grid-stride loops.
#pragma once

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Throws unless `in` holds data and `out` (named `out_name`) has its shape and holds data.
inline void check_elementwise(View<float const> in, char const* in_name, View<float> out, char const* out_name) {
    require(!in.empty(), in_name, " is empty");
    require_shape(out, in.rows, in.cols, out_name);
    require(out.data != nullptr, out_name, " has no data");
}

/// Checks a backward's input x and upstream gradient dy; returns whether dx should be written (not null).
inline bool check_elementwise_backward(View<float const> x, View<float const> dy, View<float> dx, char const* op) {
    require(!x.empty(), op, ": x is empty");
    require_shape(dy, x.rows, x.cols, polyalpaca::detail::concat(op, ": dy").c_str());
    require(dy.data != nullptr, op, ": dy has no data");
    if (dx.data == nullptr) return false;
    require_shape(dx, x.rows, x.cols, polyalpaca::detail::concat(op, ": dx").c_str());
    return true;
}

// GELU tanh approximation constants, as BLOOM writes them (the CPU backend uses the same).
inline constexpr float gelu_tanh_scale = 0.79788456f;
inline constexpr float gelu_tanh_cubic = 0.044715f;
inline constexpr float inv_sqrt2 = 0.70710678118654752f;
inline constexpr float inv_sqrt_2pi = 0.39894228040143268f;

__device__ inline float logistic_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

struct GeluTanhForward {
    float const* x;
    float* y;
    __device__ void operator()(Index i) const {
        float const v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(gelu_tanh_scale * v * (1.0f + gelu_tanh_cubic * v * v)));
    }
};
struct GeluTanhBackward {
    float const* x;
    float const* dy;
    float* dx;
    __device__ void operator()(Index i) const {
        float const v = x[i];
        float const t = tanhf(gelu_tanh_scale * v * (1.0f + gelu_tanh_cubic * v * v));
        float const slope =
            0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * gelu_tanh_scale * (1.0f + 3.0f * gelu_tanh_cubic * v * v);
        dx[i] += dy[i] * slope;
    }
};
struct GeluErfForward {
    float const* x;
    float* y;
    __device__ void operator()(Index i) const { y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * inv_sqrt2)); }
};
struct GeluErfBackward {
    float const* x;
    float const* dy;
    float* dx;
    __device__ void operator()(Index i) const {
        float const v = x[i];
        float const slope = 0.5f * (1.0f + erff(v * inv_sqrt2)) + v * expf(-0.5f * v * v) * inv_sqrt_2pi;
        dx[i] += dy[i] * slope;
    }
};
struct SiluForward {
    float const* x;
    float* y;
    __device__ void operator()(Index i) const { y[i] = x[i] * logistic_sigmoid(x[i]); }
};
struct SiluBackward {
    float const* x;
    float const* dy;
    float* dx;
    __device__ void operator()(Index i) const {
        float const s = logistic_sigmoid(x[i]);
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
};
struct SwigluForward {
    float const* gate;
    float const* up;
    float* out;
    __device__ void operator()(Index i) const { out[i] = gate[i] * logistic_sigmoid(gate[i]) * up[i]; }
};
struct SwigluBackward {
    float const* gate;
    float const* up;
    float const* dout;
    float* dgate;  // may be null
    float* dup;    // may be null
    __device__ void operator()(Index i) const {
        float const g = gate[i];
        float const s = logistic_sigmoid(g);
        if (dgate != nullptr) dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup != nullptr) dup[i] += dout[i] * g * s;
    }
};
struct AddOp {
    float const* a;
    float const* b;
    float* out;
    __device__ void operator()(Index i) const { out[i] = a[i] + b[i]; }
};
struct AccumulateOp {
    float const* src;
    float* dst;
    __device__ void operator()(Index i) const { dst[i] += src[i]; }
};

}  // namespace detail

/// y = 0.5 x (1 + tanh(0.79788456 x (1 + 0.044715 x^2))).
inline void gelu_tanh_forward(Context& ctx, View<float const> x, View<float> y) {
    detail::check_elementwise(x, "gelu_tanh_forward: x", y, "gelu_tanh_forward: y");
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::GeluTanhForward{x.data, y.data}, "gelu_tanh_forward");
}

/// dx += dy * gelu_tanh'(x). Skipped when dx is null.
inline void gelu_tanh_backward(Context& ctx, View<float const> x, View<float const> dy, View<float> dx) {
    if (!detail::check_elementwise_backward(x, dy, dx, "gelu_tanh_backward")) return;
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::GeluTanhBackward{x.data, dy.data, dx.data}, "gelu_tanh_backward");
}

/// y = 0.5 x (1 + erf(x / sqrt 2)) (exact GELU).
inline void gelu_erf_forward(Context& ctx, View<float const> x, View<float> y) {
    detail::check_elementwise(x, "gelu_erf_forward: x", y, "gelu_erf_forward: y");
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::GeluErfForward{x.data, y.data}, "gelu_erf_forward");
}

/// dx += dy * (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)). Skipped when dx is null.
inline void gelu_erf_backward(Context& ctx, View<float const> x, View<float const> dy, View<float> dx) {
    if (!detail::check_elementwise_backward(x, dy, dx, "gelu_erf_backward")) return;
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::GeluErfBackward{x.data, dy.data, dx.data}, "gelu_erf_backward");
}

/// y = x * sigmoid(x).
inline void silu_forward(Context& ctx, View<float const> x, View<float> y) {
    detail::check_elementwise(x, "silu_forward: x", y, "silu_forward: y");
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::SiluForward{x.data, y.data}, "silu_forward");
}

/// dx += dy * s (1 + x (1 - s)), s = sigmoid(x). Skipped when dx is null.
inline void silu_backward(Context& ctx, View<float const> x, View<float const> dy, View<float> dx) {
    if (!detail::check_elementwise_backward(x, dy, dx, "silu_backward")) return;
    ctx.make_current();
    detail::for_each(ctx, x.size(), detail::SiluBackward{x.data, dy.data, dx.data}, "silu_backward");
}

/// out = silu(gate) * up (LLaMA MLP).
inline void swiglu_forward(Context& ctx, View<float const> gate, View<float const> up, View<float> out) {
    detail::check_elementwise(gate, "swiglu_forward: gate", out, "swiglu_forward: out");
    require_shape(up, gate.rows, gate.cols, "swiglu_forward: up");
    require(up.data != nullptr, "swiglu_forward: up has no data");
    ctx.make_current();
    detail::for_each(ctx, gate.size(), detail::SwigluForward{gate.data, up.data, out.data}, "swiglu_forward");
}

/// dgate += dout * up * silu'(gate), dup += dout * silu(gate); each skipped when null.
inline void swiglu_backward(Context& ctx, View<float const> gate, View<float const> up, View<float const> dout,
                            View<float> dgate, View<float> dup) {
    require(!gate.empty(), "swiglu_backward: gate is empty");
    require_shape(up, gate.rows, gate.cols, "swiglu_backward: up");
    require(up.data != nullptr, "swiglu_backward: up has no data");
    require_shape(dout, gate.rows, gate.cols, "swiglu_backward: dout");
    require(dout.data != nullptr, "swiglu_backward: dout has no data");
    if (dgate.data != nullptr) require_shape(dgate, gate.rows, gate.cols, "swiglu_backward: dgate");
    if (dup.data != nullptr) require_shape(dup, gate.rows, gate.cols, "swiglu_backward: dup");
    if (dgate.data == nullptr && dup.data == nullptr) return;
    ctx.make_current();
    detail::for_each(ctx, gate.size(), detail::SwigluBackward{gate.data, up.data, dout.data, dgate.data, dup.data},
                     "swiglu_backward");
}

/// out = a + b (residual connection); out may alias a or b.
inline void add(Context& ctx, View<float const> a, View<float const> b, View<float> out) {
    detail::check_elementwise(a, "add: a", out, "add: out");
    require_shape(b, a.rows, a.cols, "add: b");
    require(b.data != nullptr, "add: b has no data");
    ctx.make_current();
    detail::for_each(ctx, a.size(), detail::AddOp{a.data, b.data, out.data}, "add");
}

/// dst += src (gradients meeting at a branch).
inline void accumulate(Context& ctx, View<float const> src, View<float> dst) {
    detail::check_elementwise(src, "accumulate: src", dst, "accumulate: dst");
    ctx.make_current();
    detail::for_each(ctx, src.size(), detail::AccumulateOp{src.data, dst.data}, "accumulate");
}

}  // namespace polyalpaca::cuda
