/// @file layers/norm.hpp
/// @brief LayerNorm<Dim> (BLOOM, GPT-NeoX) and RmsNorm<Dim> (LLaMA) over the last dimension.
#pragma once

#include <string>

#include "polyalpaca/core/activation_buffer.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/mode.hpp"

namespace polyalpaca {

/// y = (x - mean) / sqrt(var + eps) * gamma + beta; gamma starts at 1, beta at 0, as in torch.
template <class Backend, class T, int Dim, Role BaseRole = Role::Trainable>
class LayerNorm {
public:
    static constexpr Index parameter_count = 2 * Index(Dim);

    LayerNorm(std::string const& module, double eps)
        : gamma_(module + ".weight", 1, Dim, BaseRole, Init::ones()),
          beta_(module + ".bias", 1, Dim, BaseRole, Init::zeros()),
          eps_(eps) {}

    template <class F>
    void visit_parameters(F&& f) {
        f(gamma_);
        f(beta_);
    }

    View<T> forward(typename Backend::Context& ctx, View<T const> x, Mode const&) {  // (N, D) -> (N, D)
        ProfileRegion region(ctx, Region::Norm);
        x_ = x;
        auto y = y_.ensure(x.rows, Dim);
        layer_norm_forward(ctx, x, gamma_.value, beta_.value, T(eps_), y, mean_.ensure(x.rows, 1).data,
                           rstd_.ensure(x.rows, 1).data);
        return y;
    }

    /// sum = x + residual (written to `sum`, which backward keeps), then the norm of sum, in one op.
    View<T> forward_residual(typename Backend::Context& ctx, View<T const> x, View<T const> residual, View<T> sum,
                             Mode const&) {
        ProfileRegion region(ctx, Region::Norm);
        x_ = sum;
        auto y = y_.ensure(x.rows, Dim);
        add_layer_norm_forward(ctx, x, residual, gamma_.value, beta_.value, T(eps_), sum, y,
                               mean_.ensure(x.rows, 1).data, rstd_.ensure(x.rows, 1).data);
        return y;
    }

    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Norm);
        layer_norm_backward(ctx, dy, x_, gamma_.value, mean_.data(), rstd_.data(), dx, gamma_.grad, beta_.grad);
    }

private:
    Parameter<T> gamma_, beta_;
    double eps_;
    View<T const> x_;
    ActivationBuffer<Backend, T> y_, mean_, rstd_;
};

/// y = x / sqrt(mean(x^2) + eps) * gamma; gamma starts at 1.
template <class Backend, class T, int Dim, Role BaseRole = Role::Trainable>
class RmsNorm {
public:
    static constexpr Index parameter_count = Index(Dim);

    RmsNorm(std::string const& module, double eps) : gamma_(module + ".weight", 1, Dim, BaseRole, Init::ones()), eps_(eps) {}

    template <class F>
    void visit_parameters(F&& f) {
        f(gamma_);
    }

    View<T> forward(typename Backend::Context& ctx, View<T const> x, Mode const&) {  // (N, D) -> (N, D)
        ProfileRegion region(ctx, Region::Norm);
        x_ = x;
        auto y = y_.ensure(x.rows, Dim);
        rms_norm_forward(ctx, x, gamma_.value, T(eps_), y, rstd_.ensure(x.rows, 1).data);
        return y;
    }

    /// sum = x + residual (written to `sum`, which backward keeps), then the norm of sum, in one op.
    View<T> forward_residual(typename Backend::Context& ctx, View<T const> x, View<T const> residual, View<T> sum,
                             Mode const&) {
        ProfileRegion region(ctx, Region::Norm);
        x_ = sum;
        auto y = y_.ensure(x.rows, Dim);
        add_rms_norm_forward(ctx, x, residual, gamma_.value, T(eps_), sum, y, rstd_.ensure(x.rows, 1).data);
        return y;
    }

    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Norm);
        rms_norm_backward(ctx, dy, x_, gamma_.value, rstd_.data(), dx, gamma_.grad);
    }

private:
    Parameter<T> gamma_;
    double eps_;
    View<T const> x_;
    ActivationBuffer<Backend, T> y_, rstd_;
};

}  // namespace polyalpaca
