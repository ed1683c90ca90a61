/// @file adapters/ia3.hpp
/// @brief IA3<Sites...>: learned scale vectors (Liu et al. 2022, "(IA)^3"), as PEFT's IA3Config computes them. The
///        policy owns its branch (Ia3Branch), its PEFT description, its merge and its FLOPs.
#pragma once

#include <array>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/adapters/adapter_io.hpp"
#include "polyalpaca/adapters/base_projection.hpp"
#include "polyalpaca/adapters/sites.hpp"
#include "polyalpaca/core/activation_buffer.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/mode.hpp"

namespace polyalpaca {

namespace ia3_detail {

/// The MLP's projections are IA3's feed-forward modules: their input is scaled (PEFT's is_feedforward), where the
/// attention projections' output is.
template <class Site>
inline constexpr bool feedforward =
    std::is_same_v<Site, site::MlpUp> || std::is_same_v<Site, site::MlpGate> || std::is_same_v<Site, site::MlpDown>;

}  // namespace ia3_detail

/// PEFT's IA3 merge_and_unload on host copies: W's columns times l (a feed-forward site: l is (1, in)) or W's rows
/// and the bias (`bias` may be null) times l (an attention site: l is (out, 1)).
template <class T>
void ia3_merge(AdaptedModule<T> const& m, Eigen::Map<Matrix<T>> w, T* bias) {
    auto const& l = m.tensor(".ia3_l");
    if (l.rows == 1) {
        require(l.cols == w.cols(), "merge: ", m.module, ": ia3_l has ", l.cols, " values for ", w.cols(), " inputs");
        for (Index c = 0; c < w.cols(); ++c) w.col(c) *= l.values[std::size_t(c)];
        return;
    }
    require(l.rows == w.rows(), "merge: ", m.module, ": ia3_l has ", l.rows, " values for ", w.rows(), " outputs");
    for (Index r = 0; r < w.rows(); ++r) w.row(r) *= l.values[std::size_t(r)];
    if (bias != nullptr)
        for (Index r = 0; r < w.rows(); ++r) bias[r] *= l.values[std::size_t(r)];
}

/// The IA3 branch of a projection with base W (Out, In) and bias b, scale vector l:
///   an attention site:     y = (x W^T + b) * l,  l (Out, 1), kept with y before scaling (z) for dl
///   a feed-forward site:   y = (x * l) W^T + b,  l (1, In)
/// as PEFT's IA3 Linear. l starts at one, so a fresh adapter leaves the base model's outputs unchanged.
template <class Backend, class T, int In, int Out, bool Feedforward>
class Ia3Branch {
public:
    static constexpr int width = Feedforward ? In : Out;

    Ia3Branch(std::string const& module, double)
        : l_(module + ".ia3_l", Feedforward ? 1 : Out, Feedforward ? In : 1, Role::Trainable, Init::ones(),
             Owner::Adapter) {
        l_.saved_as_matrix = Feedforward;  // PEFT's (1, in)
    }

    template <class F>
    void visit_parameters(F&& f) {
        f(l_);
    }

    void forward(typename Backend::Context& ctx, BaseProjection<T> const& base, View<T const> x, View<T> y,
                 Mode const&) {
        Index const n = x.rows;
        if constexpr (Feedforward) {
            ProfileRegion region(ctx, Region::Adapter);
            auto scaled = kept_.ensure(n, In);  // x * l: the base product's input, read again by dW-less backward
            scale_columns(ctx, x, static_cast<T const*>(l_.value), static_cast<T const*>(nullptr), scaled);
            linear_forward(ctx, View<T const>(scaled), base.w(), base.b(), y);
        } else {
            auto z = kept_.ensure(n, Out);
            linear_forward(ctx, x, base.w(), base.b(), z);
            ProfileRegion region(ctx, Region::Adapter);
            scale_columns(ctx, View<T const>(z), static_cast<T const*>(l_.value), static_cast<T const*>(nullptr), y);
        }
    }

    /// dx += the projection's input gradient (skipped when dx is empty); dl.
    void backward(typename Backend::Context& ctx, BaseProjection<T> const& base, View<T const> x, View<T const> dy,
                  View<T> dx) {
        Index const n = dy.rows;
        ScratchFrame temps(ctx.temporaries);
        if constexpr (Feedforward) {  // d(x * l) = dy W; dl = sum over rows of d(x * l) * x; dx += d(x * l) * l
            auto dscaled = temps.template take<T>(n, In);
            Backend::fill_zero(ctx, dscaled.data, std::size_t(dscaled.size()));
            linear_backward(ctx, View<T const>(kept_.view()), base.w(), dy, dscaled, base.weight.grads(), base.db());
            ProfileRegion region(ctx, Region::Adapter);
            column_dots(ctx, View<T const>(dscaled), x, l_.grad);
            if (dx.empty()) return;
            scale_columns(ctx, View<T const>(dscaled), static_cast<T const*>(l_.value), static_cast<T const*>(nullptr),
                          dscaled);
            accumulate(ctx, View<T const>(dscaled), dx);
        } else {  // dz = dy * l; dl = sum over rows of dy * z
            auto dz = temps.template take<T>(n, Out);
            {
                ProfileRegion region(ctx, Region::Adapter);
                column_dots(ctx, dy, View<T const>(kept_.view()), l_.grad);
                scale_columns(ctx, dy, static_cast<T const*>(l_.value), static_cast<T const*>(nullptr), dz);
            }
            linear_backward(ctx, x, base.w(), View<T const>(dz), dx, base.weight.grads(), base.db());
        }
    }

    Parameter<T>& scales() { return l_; }

private:
    Parameter<T> l_;
    ActivationBuffer<Backend, T> kept_;  // x * l (feed-forward) or x W^T + b (attention)
};

/// IA3 on chosen projections, base weights frozen. PEFT's defaults per family: BLOOM and GPT-NeoX
/// IA3<site::Qkv, site::MlpDown>, LLaMA IA3<site::Key, site::Value, site::MlpDown>. No dropout.
template <class... Sites>
struct IA3 {
    static_assert(sizeof...(Sites) > 0, "IA3 needs at least one site, e.g. IA3<site::Qkv, site::MlpDown>");

    static constexpr std::string_view method = "ia3";
    static constexpr std::string_view name = "IA3";  ///< in messages and reports
    static constexpr bool trains_base = false;
    static constexpr bool has_dropout = false;

    template <class Site>
    static constexpr bool applies_to = (std::is_same_v<Site, Sites> || ...);
    template <class SiteList>
    static constexpr bool sites_within = (SiteList::template contains<Sites> && ...);

    template <class Backend, class T, int In, int Out, class Site>
    using Branch = Ia3Branch<Backend, T, In, Out, ia3_detail::feedforward<Site>>;
    template <int In, int Out, class Site>
    static constexpr Index parameter_count = ia3_detail::feedforward<Site> ? In : Out;
    /// The scale forward, its input gradient and dl: three multiplies per scaled value.
    template <int In, int Out, class Site>
    static constexpr double flops_per_token = 3.0 * double(parameter_count<In, Out, Site>);

    static constexpr std::array<std::string_view, 1> tensor_suffixes{".ia3_l"};

    /// adapter_config.json as PEFT 0.21 writes it for an IA3Config; feedforward_modules are the adapted modules
    /// whose scale is (1, in).
    template <class T>
    static nlohmann::json peft_config(PeftSettings const& s, std::vector<AdaptedModule<T>> const& modules) {
        nlohmann::json c = peft_common_config(s, "IA3");
        c["feedforward_modules"] = feedforward_leaves(modules);
        c["init_ia3_weights"] = true;
        return c;
    }
    template <class T>
    static void check_peft_config(PeftConfigCheck& c, std::vector<AdaptedModule<T>> const& modules) {
        c.expect("peft_type", "IA3", nullptr);
        c.expect("fan_in_fan_out", false, false);
        auto const want = feedforward_leaves(modules);
        std::set<std::string> const found_set = [&] {
            auto const v = c.string_list("feedforward_modules");
            std::set<std::string> leaves;
            for (auto const& name : v) leaves.insert(name.substr(name.rfind('.') + 1));  // "mlp.dense_4h_to_h"
            return leaves;
        }();
        std::vector<std::string> const found(found_set.begin(), found_set.end());
        if (found != want)
            c.add_mismatch("feedforward_modules: expected " + nlohmann::json(want).dump() + ", found " +
                           nlohmann::json(found).dump());
    }
    /// PEFT's merge_and_unload: W's rows (attention) or columns (feed-forward) times l; an attention site's bias
    /// times l.
    template <class T>
    static void merge(AdaptedModule<T> const& m, Eigen::Map<Matrix<T>> w, T* bias) {
        ia3_merge(m, w, bias);
    }

private:
    template <class T>
    static std::vector<std::string> feedforward_leaves(std::vector<AdaptedModule<T>> const& modules) {
        std::set<std::string> leaves;
        for (auto const& m : modules)
            if (m.tensor(".ia3_l").rows == 1) leaves.insert(m.module.substr(m.module.rfind('.') + 1));
        return {leaves.begin(), leaves.end()};
    }
};

}  // namespace polyalpaca
