/// @file layers/linear.hpp
/// @brief Linear<B, T, LinearSpec, Site, Adapter>: y = x W^T + b, computed by the adapter's branch when the adapter
///        names Site.
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

/// A dense projection with the HF weight layout (Out, In). The base weight is frozen under an adapter and
/// trainable under NoAdapter; where Adapter applies to Site its branch (adapters/) computes the adapted projection.
template <class Backend, class T, LinearSpec Spec, class Site, class Adapter = NoAdapter>
class Linear {
    static constexpr int In = Spec.in, Out = Spec.out;
    static constexpr bool HasBias = Spec.bias;
    static_assert(In > 0 && Out > 0, "a Linear layer needs positive in and out features");

public:
    static constexpr bool adapted = Adapter::template applies_to<Site>;
    static constexpr Index parameter_count = Index(In) * Out + (HasBias ? Out : 0);
    static constexpr Index adapter_parameter_count = adapted ? Adapter::template parameter_count<In, Out, Site> : 0;
    static constexpr double adapter_flops_per_token = adapted ? Adapter::template flops_per_token<In, Out, Site> : 0.0;
    static constexpr int in_features = In;
    static constexpr int out_features = Out;
    /// Whether backward reads x: for the trainable weight's gradient or the adapter's branch. A frozen, unadapted
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
        if constexpr (adapted) branch_.forward(ctx, base(), x, y, mode);
        else linear_forward(ctx, x, weight_.values(), HasBias ? bias_.value : nullptr, y);
    }

    /// Adds into dx (unless empty) and into the gradients of trainable weights.
    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Linear);
        if constexpr (adapted) branch_.backward(ctx, base(), x_, dy, dx);
        else linear_backward(ctx, x_, weight_.values(), dy, dx, weight_.grads(), HasBias ? bias_.grad : nullptr);
    }

    View<T> output() const { return y_.view(); }
    Parameter<T>& weight() { return weight_; }
    Parameter<T>& bias() { return bias_; }
    auto& branch() { return branch_; }

private:
    template <bool Adapted, class = void>
    struct BranchOf {
        using type = NoBranch;
    };
    template <class Unused>
    struct BranchOf<true, Unused> {
        using type = typename Adapter::template Branch<Backend, T, In, Out, Site>;
    };
    using Branch = typename BranchOf<adapted>::type;
    static Branch make_branch(std::string const& module, double dropout) {
        if constexpr (adapted) return Branch(module, dropout);
        else return Branch{};
    }
    BaseProjection<T> base() { return {weight_, bias_, HasBias}; }

    Parameter<T> weight_, bias_;
    [[no_unique_address]] Branch branch_;
    View<T const> x_;  // forward's input; backward reads its data only when backward_reads_input
    ActivationBuffer<Backend, T> y_;
};

}  // namespace polyalpaca
