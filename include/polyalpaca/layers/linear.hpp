/// @file layers/linear.hpp
/// @brief Linear<In, Out, HasBias, Site, Adapter>: y = x W^T + b, with a LoRA branch when the adapter names Site.
#pragma once

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/core/activation_buffer.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/mode.hpp"

namespace polyalpaca {

/// The low-rank branch of an adapted Linear: A (rank, In), B (Out, rank), dropout on its input.
template <class Backend, class T, int In, int Out, class Adapter>
class LoraBranch {
    static_assert(Adapter::rank <= (In < Out ? In : Out),
                  "LoRA rank exceeds min(in_features, out_features) of an adapted projection: choose a smaller rank");

public:
    static constexpr int rank = Adapter::rank;

    LoraBranch(std::string const& module, double dropout)
        : a_(module + ".lora_A.weight", rank, In, Role::Trainable, Init::uniform(Adapter::a_init_bound(In))),
          b_(module + ".lora_B.weight", Out, rank, Role::Trainable, Init::zeros()),
          dropout_(dropout) {}

    template <class F>
    void visit_parameters(F&& f) {
        f(a_);
        f(b_);
    }

    /// y += scale * dropout(x) A^T B^T. Keeps neither dropout(x) nor its mask: backward draws the same mask again
    /// from the generator's state saved here and applies it to x (which the caller keeps), so an adapted site holds
    /// only its (N, rank) product between the passes.
    void forward(typename Backend::Context& ctx, View<T const> x, View<T> y, Mode const& mode) {
        ProfileRegion region(ctx, Region::Adapter);
        Index const n = x.rows;
        x_ = x;
        use_mask_ = mode.training && dropout_ > 0;
        ScratchFrame temps(ctx.temporaries);
        View<T const> dropped = x;
        if (use_mask_) {
            mask_rng_ = *mode.rng;
            auto xd = temps.template take<T>(n, In);
            dropout_forward(ctx, x, xd, temps.template take<T>(n, In), T(dropout_), *mode.rng);
            dropped = xd;
        }
        auto u = low_rank_.ensure(n, rank);  // (N, r): scale * dropout(x) A^T
        linear_forward(ctx, dropped, a_.values(), static_cast<T const*>(nullptr), u);
        scale(ctx, u.data, u.size(), T(Adapter::scale));
        linear_forward(ctx, View<T const>(u), b_.values(), static_cast<T const*>(nullptr), y, true);
    }

    /// dA, dB from dy; dx += the branch's contribution (skipped when dx is empty).
    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Adapter);
        Index const n = dy.rows;
        ScratchFrame temps(ctx.temporaries);
        auto du = temps.template take<T>(n, rank);  // (N, r): gradient w.r.t. dropout(x) A^T
        Backend::fill_zero(ctx, du.data, std::size_t(du.size()));
        linear_backward(ctx, View<T const>(low_rank_.view()), b_.values(), dy, du, b_.grads(), static_cast<T*>(nullptr));
        scale(ctx, du.data, du.size(), T(Adapter::scale));
        if (!use_mask_) {
            linear_backward(ctx, x_, a_.values(), View<T const>(du), dx, a_.grads(), static_cast<T*>(nullptr));
            return;
        }
        // dropout(x) and its mask, bit for bit as forward drew them (a copy: the model's generator is not moved).
        auto xd = temps.template take<T>(n, In);
        auto mask = temps.template take<T>(n, In);
        Rng again = mask_rng_;
        dropout_forward(ctx, x_, xd, mask, T(dropout_), again);
        if (dx.empty()) {
            linear_backward(ctx, View<T const>(xd), a_.values(), View<T const>(du), View<T>{}, a_.grads(),
                            static_cast<T*>(nullptr));
            return;
        }
        auto dxd = temps.template take<T>(n, In);
        Backend::fill_zero(ctx, dxd.data, std::size_t(dxd.size()));
        linear_backward(ctx, View<T const>(xd), a_.values(), View<T const>(du), dxd, a_.grads(),
                        static_cast<T*>(nullptr));
        dropout_backward(ctx, View<T const>(dxd), View<T const>(mask), dx);
    }

    Parameter<T>& a() { return a_; }
    Parameter<T>& b() { return b_; }

private:
    Parameter<T> a_, b_;
    double dropout_;
    bool use_mask_ = false;
    Rng mask_rng_;  // the dropout generator's state before forward drew the mask
    View<T const> x_;
    ActivationBuffer<Backend, T> low_rank_;
};

struct NoBranch {
    template <class F>
    void visit_parameters(F&&) {}
};

/// A projection's shape, named where a layer spells it out: `Linear<B, T, LinearSpec{.in = 1024, .out = 3072,
/// .bias = true}, site::Qkv, Adapter>`.
struct LinearSpec {
    int in = 0;
    int out = 0;
    bool bias = true;
};

/// A dense projection with the HF weight layout (Out, In). The base weight is frozen under LoRA and
/// trainable under NoAdapter; the LoRA branch exists only when Adapter applies to Site.
template <class Backend, class T, LinearSpec Spec, class Site, class Adapter = NoAdapter>
class Linear {
    static constexpr int In = Spec.in, Out = Spec.out;
    static constexpr bool HasBias = Spec.bias;
    static_assert(In > 0 && Out > 0, "a Linear layer needs positive in and out features");

public:
    static constexpr bool adapted = Adapter::template applies_to<Site>;
    static constexpr Index parameter_count = Index(In) * Out + (HasBias ? Out : 0);
    static constexpr Index adapter_parameter_count = adapted ? Index(Adapter::rank) * (In + Out) : 0;
    static constexpr int in_features = In;
    static constexpr int out_features = Out;
    /// Whether backward reads x: for the trainable weight's gradient or the LoRA branch. A frozen, unadapted
    /// projection needs only dy and its weight, so its input may be a temporary of the caller's forward.
    static constexpr bool backward_reads_input = base_role<Adapter> == Role::Trainable || adapted;

    /// `module` is the HF module path, e.g. "transformer.h.0.self_attention.query_key_value".
    Linear(std::string const& module, double init_std, double adapter_dropout = 0.0)
        : weight_(module + ".weight", Out, In, base_role<Adapter>, Init::normal(init_std)),
          bias_(module + ".bias", 1, HasBias ? Out : 0, base_role<Adapter>, Init::zeros()),
          branch_(make_branch(module, adapter_dropout)) {}

    template <class F>
    void visit_parameters(F&& f) {
        f(weight_);
        if constexpr (HasBias) f(bias_);
        branch_.visit_parameters(f);
    }

    View<T> forward(typename Backend::Context& ctx, View<T const> x, Mode const& mode) {  // (N, In) -> (N, Out)
        auto y = y_.ensure(x.rows, Out);
        forward_into(ctx, x, y, mode);
        return y;
    }

    /// forward into memory the caller owns (e.g. a temporary consumed right away); output() is then not kept.
    void forward_into(typename Backend::Context& ctx, View<T const> x, View<T> y, Mode const& mode) {
        ProfileRegion region(ctx, Region::Linear);
        require_shape(y, x.rows, Out, "Linear::forward_into: y");
        x_ = x;
        linear_forward(ctx, x, weight_.values(), HasBias ? bias_.value : nullptr, y);
        if constexpr (adapted) branch_.forward(ctx, x, y, mode);
    }

    /// Adds into dx (unless empty) and into the gradients of trainable weights.
    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Linear);
        linear_backward(ctx, x_, weight_.values(), dy, dx, weight_.grads(), HasBias ? bias_.grad : nullptr);
        if constexpr (adapted) branch_.backward(ctx, dy, dx);
    }

    View<T> output() const { return y_.view(); }
    Parameter<T>& weight() { return weight_; }
    Parameter<T>& bias() { return bias_; }
    auto& branch() { return branch_; }

private:
    using Branch = std::conditional_t<adapted, LoraBranch<Backend, T, In, Out, Adapter>, NoBranch>;
    static Branch make_branch(std::string const& module, double dropout) {
        if constexpr (adapted) return Branch(module, dropout);
        else return Branch{};
    }

    Parameter<T> weight_, bias_;
    [[no_unique_address]] Branch branch_;
    View<T const> x_;  // forward's input; backward reads its data only when backward_reads_input
    ActivationBuffer<Backend, T> y_;
};

}  // namespace polyalpaca
