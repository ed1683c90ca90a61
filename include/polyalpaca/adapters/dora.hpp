/// @file adapters/dora.hpp
/// @brief DoRA<Rank, Alpha, Sites...>: weight-decomposed low-rank adaptation (Liu et al. 2024), as PEFT's LoraConfig
///        with use_dora=True computes it. The policy owns its branch (DoraBranch), its PEFT description, its merge
///        and its FLOPs; the low-rank pair is LoRA's.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/adapters/lora.hpp"

namespace polyalpaca {

/// The DoRA branch of a projection with base W (Out, In) and bias b, magnitude m (Out), low-rank pair A, B and
/// scale s = alpha / rank. With V = W + s B A and its row norms n (recomputed each forward, a constant for the
/// gradient as the DoRA paper's section 4.3 and PEFT do), g = m / n:
///   y = x W^T + b + (g - 1) * (xd W^T) + g * s xd A^T B^T,   xd = dropout(x)
/// which without dropout is y = g * (x V^T) + b. Keeps q = xd W^T + s xd A^T B^T (N, Out), g and n between the
/// passes; reads W in fp32 (the combined weight is built from it), so its base cannot be kept in bf16 only.
template <class Backend, class T, int In, int Out, class Policy>
class DoraBranch {
public:
    DoraBranch(std::string const& module, double dropout)
        : magnitude_(module + ".lora_magnitude_vector", 1, Out, Role::Trainable, Init::row_norms(module + ".weight"),
                     Owner::Adapter),
          pair_(module, dropout) {}

    template <class F>
    void visit_parameters(F&& f) {
        pair_.visit_parameters(f);
        f(magnitude_);
    }

    void forward(typename Backend::Context& ctx, BaseProjection<T> const& base, View<T const> x, View<T> y,
                 Mode const& mode) {
        Index const n = x.rows;
        T const s = T(Policy::scale);
        update_scales(ctx, base);
        ProfileRegion region(ctx, Region::Adapter);
        auto q = q_.ensure(n, Out);
        used_mask_ = pair_.drops(mode);
        if (!used_mask_) {  // y = g * (x W^T + s x A^T B^T) + b
            linear_forward(ctx, x, base.w(), static_cast<T const*>(nullptr), q);
            pair_.forward(ctx, x, q, s, mode, true);
            scale_columns(ctx, View<T const>(q), g(), base.b(), y);
            return;
        }
        ScratchFrame temps(ctx.temporaries);
        linear_forward(ctx, x, base.w(), base.b(), y);  // y = x W^T + b
        pair_.forward(ctx, x, q, s, mode, false);       // q = s xd A^T B^T (the pair draws the mask)
        auto const xd = pair_.dropped_input(ctx, temps.template take<T>(n, In), temps.template take<T>(n, In));
        auto h = temps.template take<T>(n, Out);
        linear_forward(ctx, xd, base.w(), static_cast<T const*>(nullptr), h);  // h = xd W^T
        accumulate(ctx, View<T const>(h), q);                                  // q = h + s xd A^T B^T
        scale(ctx, h.data, h.size(), T(-1));
        accumulate(ctx, View<T const>(h), y);  // y = x W^T + b - h
        scale_columns(ctx, View<T const>(q), g(), static_cast<T const*>(nullptr), h);
        accumulate(ctx, View<T const>(h), y);  // y += g * q
    }

    /// dx += the projection's input gradient (skipped when dx is empty); dA, dB, dm.
    void backward(typename Backend::Context& ctx, BaseProjection<T> const& base, View<T const> x, View<T const> dy,
                  View<T> dx) {
        Index const n = dy.rows;
        ProfileRegion region(ctx, Region::Adapter);
        ScratchFrame temps(ctx.temporaries);
        {  // dm = sum over rows of dy * q / n
            auto dm = temps.template take<T>(1, Out);
            Backend::fill_zero(ctx, dm.data, std::size_t(Out));
            column_dots(ctx, dy, View<T const>(q_.view()), dm.data);
            divide(ctx, static_cast<T const*>(dm.data), static_cast<T const*>(norms_.view().data), dm.data, Index(Out));
            accumulate(ctx, View<T const>(dm), magnitude_.grads());
        }
        auto dq = temps.template take<T>(n, Out);  // dy * g
        scale_columns(ctx, dy, g(), static_cast<T const*>(nullptr), dq);
        if (!used_mask_) {  // y = g * (x W^T + z) + b: dx += dq W, and the pair takes dq
            if (!dx.empty())
                linear_backward(ctx, x, base.w(), View<T const>(dq), dx, View<T>{}, static_cast<T*>(nullptr));
            pair_.backward(ctx, View<T const>(dq), dx, T(Policy::scale));
            return;
        }
        pair_.backward(ctx, View<T const>(dq), dx, T(Policy::scale));
        if (dx.empty()) return;
        linear_backward(ctx, x, base.w(), dy, dx, View<T>{}, static_cast<T*>(nullptr));  // from x W^T + b
        auto dh = temps.template take<T>(n, Out);  // dy * (g - 1), the gradient of h = xd W^T
        Backend::copy(ctx, dy.data, dh.data, std::size_t(dh.size()));
        scale(ctx, dh.data, dh.size(), T(-1));
        accumulate(ctx, View<T const>(dq), dh);
        auto dxd = temps.template take<T>(n, In);
        Backend::fill_zero(ctx, dxd.data, std::size_t(dxd.size()));
        linear_backward(ctx, x, base.w(), View<T const>(dh), dxd, View<T>{}, static_cast<T*>(nullptr));
        auto mask = temps.template take<T>(n, In);
        pair_.dropped_input(ctx, temps.template take<T>(n, In), mask);
        dropout_backward(ctx, View<T const>(dxd), View<T const>(mask), dx);
    }

    Parameter<T>& a() { return pair_.a(); }
    Parameter<T>& b() { return pair_.b(); }
    Parameter<T>& magnitude() { return magnitude_; }

private:
    T const* g() const { return g_.view().data; }

    /// n = row norms of W + s B A (built in a temporary: W copied, then s B times A added the way linear_backward
    /// adds dy W into dx), g = m / n.
    void update_scales(typename Backend::Context& ctx, BaseProjection<T> const& base) {
        ProfileRegion region(ctx, Region::Adapter);
        ScratchFrame temps(ctx.temporaries);
        auto combined = temps.template take<T>(Out, In);
        Backend::copy(ctx, base.weight.value, combined.data, std::size_t(combined.size()));
        auto scaled_b = temps.template take<T>(Out, Policy::rank);
        Backend::copy(ctx, pair_.b().value, scaled_b.data, std::size_t(scaled_b.size()));
        scale(ctx, scaled_b.data, scaled_b.size(), T(Policy::scale));
        linear_backward(ctx, base.w(), pair_.a().values(), View<T const>(scaled_b), combined, View<T>{},
                        static_cast<T*>(nullptr));
        auto norms = norms_.ensure(1, Out);
        row_norms(ctx, View<T const>(combined), norms.data);
        auto g = g_.ensure(1, Out);
        divide(ctx, static_cast<T const*>(magnitude_.value), static_cast<T const*>(norms.data), g.data, Index(Out));
    }

    Parameter<T> magnitude_;
    LowRankPair<Backend, T, In, Out, Policy::rank> pair_;
    ActivationBuffer<Backend, T> q_, g_, norms_;
    bool used_mask_ = false;
};

/// PEFT's DoRA merge_and_unload on host copies: W + scale B A, each row then scaled to the module's magnitude,
/// (m / ||W + s B A||) * (W + s B A); the bias is unchanged.
template <class T>
void dora_merge(AdaptedModule<T> const& m, Eigen::Map<Matrix<T>> w, double scale) {
    lora_detail::add_low_rank(m, w, scale);
    auto const& magnitude = m.tensor(".lora_magnitude_vector");
    require(magnitude.rows * magnitude.cols == w.rows(), "merge: ", m.module, ": the magnitude has ",
            magnitude.rows * magnitude.cols, " values for ", w.rows(), " rows");
    for (Index r = 0; r < w.rows(); ++r) w.row(r) *= magnitude.values[std::size_t(r)] / w.row(r).norm();
}

/// DoRA on LoRA's low-rank pair: A (rank, in) and B (out, rank) start as LoRA's, the magnitude m (out) as the row
/// norms of the base weight, so a fresh adapter leaves the base model's outputs unchanged. PEFT saves m as
/// "<module>.lora_magnitude_vector".
template <int Rank, int Alpha, class... Sites>
struct DoRA {
    using Lora = LoRA<Rank, Alpha, Sites...>;

    static constexpr std::string_view method = "dora";
    static constexpr std::string_view name = "DoRA";  ///< in messages and reports
    static constexpr bool trains_base = false;
    static constexpr bool has_dropout = true;
    static constexpr bool reads_base_values = true;
    static constexpr int rank = Rank;
    static constexpr int alpha = Alpha;
    static constexpr double scale = Lora::scale;

    template <class Site>
    static constexpr bool applies_to = Lora::template applies_to<Site>;
    template <class SiteList>
    static constexpr bool sites_within = Lora::template sites_within<SiteList>;

    template <class Backend, class T, int In, int Out, class Site>
    using Branch = DoraBranch<Backend, T, In, Out, DoRA>;
    template <int In, int Out, class Site>
    static constexpr Index parameter_count = Lora::template parameter_count<In, Out, Site> + Out;
    /// LoRA's, plus the magnitude's scale of each output and its gradient. Not counted: the combined weight's
    /// norms (once per step, not per token) and, under dropout, the second product with W that PEFT also makes.
    template <int In, int Out, class Site>
    static constexpr double flops_per_token = Lora::template flops_per_token<In, Out, Site> + 4.0 * Out;

    static constexpr std::array<std::string_view, 3> tensor_suffixes{".lora_A.weight", ".lora_B.weight",
                                                                     ".lora_magnitude_vector"};

    template <class T>
    static nlohmann::json peft_config(PeftSettings const& s, std::vector<AdaptedModule<T>> const&) {
        return lora_detail::peft_config(s, Rank, Alpha, true);
    }
    template <class T>
    static void check_peft_config(PeftConfigCheck& c, std::vector<AdaptedModule<T>> const&) {
        lora_detail::check_peft_config(c, Rank, Alpha, true);
    }
    /// PEFT's merge_and_unload: (m / ||W + s B A||) * (W + s B A), row by row; the bias is unchanged.
    template <class T>
    static void merge(AdaptedModule<T> const& m, Eigen::Map<Matrix<T>> w, T*) {
        dora_merge(m, w, scale);
    }
};

}  // namespace polyalpaca
