/// @file layers/mlp.hpp
/// @brief The feed-forward blocks: GeluMlp (BLOOM tanh GELU, GPT-NeoX erf GELU) and SwiGluMlp (LLaMA).
#pragma once

#include <string>

#include "polyalpaca/adapters/sites.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/linear.hpp"

namespace polyalpaca {

enum class Gelu { Tanh, Erf };

/// Memory for an MLP's activation (N, F), the down projection's input: the layer's kept buffer when down_proj's
/// backward reads it (a trainable or adapted down_proj), else a temporary of the forward's frame.
template <class Down, class T, class Buffer, class Frame>
View<T> mlp_activation(Buffer& kept, Frame& temps, Index n, Index ffn) {
    if constexpr (Down::backward_reads_input) return kept.ensure(n, ffn);
    else return temps.template take<T>(n, ffn);
}

/// down(gelu(up(x))), both projections with bias.
template <class Backend, class T, int Dim, int Ffn, Gelu Form, class Adapter>
class GeluMlp {
public:
    using Up = Linear<Backend, T, LinearSpec{.in = Dim, .out = Ffn, .bias = true}, site::MlpUp, Adapter>;
    using Down = Linear<Backend, T, LinearSpec{.in = Ffn, .out = Dim, .bias = true}, site::MlpDown, Adapter>;
    static constexpr Index parameter_count = Up::parameter_count + Down::parameter_count;
    static constexpr Index adapter_parameter_count = Up::adapter_parameter_count + Down::adapter_parameter_count;

    /// `up_name` and `down_name` are the HF module paths of the two projections.
    GeluMlp(std::string const& up_name, std::string const& down_name, double init_std, double adapter_dropout)
        : up_(up_name, init_std, adapter_dropout), down_(down_name, init_std, adapter_dropout) {}

    template <class F>
    void visit_parameters(F&& f) {
        up_.visit_parameters(f);
        down_.visit_parameters(f);
    }

    /// x (N, D) -> y (N, D), memory the caller owns: the block adds it to the residual right away, and backward
    /// does not need it.
    void forward_into(typename Backend::Context& ctx, View<T const> x, View<T> y, Mode const& mode) {
        ProfileRegion region(ctx, Region::Activation);
        auto h = up_.forward(ctx, x, mode);  // (N, F)
        ScratchFrame temps(ctx.temporaries);
        auto a = mlp_activation<Down, T>(act_, temps, x.rows, Ffn);
        if constexpr (Form == Gelu::Tanh) gelu_tanh_forward(ctx, View<T const>(h), a);
        else gelu_erf_forward(ctx, View<T const>(h), a);
        down_.forward_into(ctx, a, y, mode);
    }

    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Activation);
        Index const n = dy.rows;
        ScratchFrame temps(ctx.temporaries);
        auto da = temps.template take<T>(n, Ffn);
        Backend::fill_zero(ctx, da.data, std::size_t(da.size()));
        down_.backward(ctx, dy, da);
        auto dh = temps.template take<T>(n, Ffn);
        Backend::fill_zero(ctx, dh.data, std::size_t(dh.size()));
        if constexpr (Form == Gelu::Tanh) gelu_tanh_backward(ctx, View<T const>(up_.output()), View<T const>(da), dh);
        else gelu_erf_backward(ctx, View<T const>(up_.output()), View<T const>(da), dh);
        up_.backward(ctx, dh, dx);
    }

    Up& up() { return up_; }
    Down& down() { return down_; }

private:
    Up up_;
    Down down_;
    ActivationBuffer<Backend, T> act_;
};

/// down(silu(gate(x)) * up(x)), projections without bias.
template <class Backend, class T, int Dim, int Ffn, class Adapter>
class SwiGluMlp {
public:
    using Gate = Linear<Backend, T, LinearSpec{.in = Dim, .out = Ffn, .bias = false}, site::MlpGate, Adapter>;
    using Up = Linear<Backend, T, LinearSpec{.in = Dim, .out = Ffn, .bias = false}, site::MlpUp, Adapter>;
    using Down = Linear<Backend, T, LinearSpec{.in = Ffn, .out = Dim, .bias = false}, site::MlpDown, Adapter>;
    static constexpr Index parameter_count = Gate::parameter_count + Up::parameter_count + Down::parameter_count;
    static constexpr Index adapter_parameter_count =
        Gate::adapter_parameter_count + Up::adapter_parameter_count + Down::adapter_parameter_count;

    /// `module` is the HF path of the MLP, e.g. "model.layers.0.mlp".
    SwiGluMlp(std::string const& module, double init_std, double adapter_dropout)
        : gate_(module + ".gate_proj", init_std, adapter_dropout),
          up_(module + ".up_proj", init_std, adapter_dropout),
          down_(module + ".down_proj", init_std, adapter_dropout) {}

    template <class F>
    void visit_parameters(F&& f) {
        gate_.visit_parameters(f);
        up_.visit_parameters(f);
        down_.visit_parameters(f);
    }

    /// x (N, D) -> y (N, D), memory the caller owns (see GeluMlp::forward_into).
    void forward_into(typename Backend::Context& ctx, View<T const> x, View<T> y, Mode const& mode) {
        ProfileRegion region(ctx, Region::Activation);
        auto g = gate_.forward(ctx, x, mode);  // (N, F)
        auto u = up_.forward(ctx, x, mode);    // (N, F)
        ScratchFrame temps(ctx.temporaries);
        auto a = mlp_activation<Down, T>(act_, temps, x.rows, Ffn);
        swiglu_forward(ctx, View<T const>(g), View<T const>(u), a);
        down_.forward_into(ctx, a, y, mode);
    }

    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Activation);
        Index const n = dy.rows;
        ScratchFrame temps(ctx.temporaries);
        auto da = temps.template take<T>(n, Ffn);
        auto dg = temps.template take<T>(n, Ffn);
        auto du = temps.template take<T>(n, Ffn);
        for (auto v : {da, dg, du}) Backend::fill_zero(ctx, v.data, std::size_t(v.size()));
        down_.backward(ctx, dy, da);
        swiglu_backward(ctx, View<T const>(gate_.output()), View<T const>(up_.output()), View<T const>(da), dg, du);
        gate_.backward(ctx, dg, dx);
        up_.backward(ctx, du, dx);
    }

    Gate& gate() { return gate_; }
    Up& up() { return up_; }
    Down& down() { return down_; }

private:
    Gate gate_;
    Up up_;
    Down down_;
    ActivationBuffer<Backend, T> act_;
};

}  // namespace polyalpaca
