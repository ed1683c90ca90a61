/// @file adapters/lora.hpp
/// @brief LoRA<Rank, Alpha, Sites...>: low-rank adapters on chosen projections, base weights frozen. The policy
///        owns its branch (LoraBranch), its PEFT description, its merge into the base weight and its FLOPs.
#pragma once

#include <array>
#include <cmath>
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
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/mode.hpp"

namespace polyalpaca {

/// The low-rank part of LoRA and DoRA: A (rank, In), B (Out, rank), dropout on its input, and the product
/// u = factor * dropout(x) A^T kept between the passes. Keeps neither dropout(x) nor its mask: backward draws the
/// same mask again from the generator's state saved here and applies it to x (which the caller keeps).
template <class Backend, class T, int In, int Out, int Rank>
class LowRankPair {
    static_assert(Rank <= (In < Out ? In : Out),
                  "LoRA rank exceeds min(in_features, out_features) of an adapted projection: choose a smaller rank");

public:
    LowRankPair(std::string const& module, double dropout)
        : a_(module + ".lora_A.weight", Rank, In, Role::Trainable, Init::uniform(1.0 / std::sqrt(double(In))),
             Owner::Adapter),
          b_(module + ".lora_B.weight", Out, Rank, Role::Trainable, Init::zeros(), Owner::Adapter),
          dropout_(dropout) {}

    template <class F>
    void visit_parameters(F&& f) {
        f(a_);
        f(b_);
    }

    bool drops(Mode const& mode) const { return mode.training && dropout_ > 0; }

    /// y (+)= factor * dropout(x) A^T B^T.
    void forward(typename Backend::Context& ctx, View<T const> x, View<T> y, T factor, Mode const& mode,
                 bool accumulate) {
        Index const n = x.rows;
        x_ = x;
        use_mask_ = drops(mode);
        ScratchFrame temps(ctx.temporaries);
        View<T const> dropped = x;
        if (use_mask_) {
            mask_rng_ = *mode.rng;
            auto xd = temps.template take<T>(n, In);
            dropout_forward(ctx, x, xd, temps.template take<T>(n, In), T(dropout_), *mode.rng);
            dropped = xd;
        }
        auto u = low_rank_.ensure(n, Rank);
        linear_forward(ctx, dropped, a_.values(), static_cast<T const*>(nullptr), u);
        scale_values(ctx, u, factor);
        linear_forward(ctx, View<T const>(u), b_.values(), static_cast<T const*>(nullptr), y, accumulate);
    }

    /// dA, dB from dz, the gradient of z = factor * dropout(x) A^T B^T; dx += its contribution (skipped when dx is
    /// empty).
    void backward(typename Backend::Context& ctx, View<T const> dz, View<T> dx, T factor) {
        Index const n = dz.rows;
        ScratchFrame temps(ctx.temporaries);
        auto du = temps.template take<T>(n, Rank);  // (N, r): gradient w.r.t. dropout(x) A^T
        Backend::fill_zero(ctx, du.data, std::size_t(du.size()));
        linear_backward(ctx, View<T const>(low_rank_.view()), b_.values(), dz, du, b_.grads(),
                        static_cast<T*>(nullptr));
        scale_values(ctx, du, factor);
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

    /// dropout(x) of the last forward, as it drew it, into `xd` (x itself when no mask was drawn).
    View<T const> dropped_input(typename Backend::Context& ctx, View<T> xd, View<T> mask) const {
        if (!use_mask_) return x_;
        Rng again = mask_rng_;
        dropout_forward(ctx, x_, xd, mask, T(dropout_), again);
        return xd;
    }

    Parameter<T>& a() { return a_; }
    Parameter<T>& b() { return b_; }

private:
    static void scale_values(typename Backend::Context& ctx, View<T> v, T factor) {
        scale(ctx, v.data, v.size(), factor);
    }

    Parameter<T> a_, b_;
    double dropout_;
    bool use_mask_ = false;
    Rng mask_rng_;  // the dropout generator's state before forward drew the mask
    View<T const> x_;
    ActivationBuffer<Backend, T> low_rank_;
};

/// The LoRA branch of an adapted projection: y = x W^T + b + (alpha / rank) * dropout(x) A^T B^T.
template <class Backend, class T, int In, int Out, class Policy>
class LoraBranch {
public:
    LoraBranch(std::string const& module, double dropout) : pair_(module, dropout) {}

    template <class F>
    void visit_parameters(F&& f) {
        pair_.visit_parameters(f);
    }

    void forward(typename Backend::Context& ctx, BaseProjection<T> const& base, View<T const> x, View<T> y,
                 Mode const& mode) {
        linear_forward(ctx, x, base.w(), base.b(), y);
        ProfileRegion region(ctx, Region::Adapter);
        pair_.forward(ctx, x, y, T(Policy::scale), mode, true);
    }

    /// dx += the projection's input gradient (skipped when dx is empty); dA, dB.
    void backward(typename Backend::Context& ctx, BaseProjection<T> const& base, View<T const> x, View<T const> dy,
                  View<T> dx) {
        linear_backward(ctx, x, base.w(), dy, dx, base.weight.grads(), base.db());
        ProfileRegion region(ctx, Region::Adapter);
        pair_.backward(ctx, dy, dx, T(Policy::scale));
    }

    Parameter<T>& a() { return pair_.a(); }
    Parameter<T>& b() { return pair_.b(); }

private:
    LowRankPair<Backend, T, In, Out, Policy::rank> pair_;
};

namespace lora_detail {

/// adapter_config.json as PEFT 0.21 writes it for a LoraConfig (use_dora as given).
inline nlohmann::json peft_config(PeftSettings const& s, int rank, int alpha, bool use_dora) {
    nlohmann::json c = peft_common_config(s, "LORA");
    for (char const* null_field :
         {"alora_invocation_tokens", "arrow_config", "corda_config", "eva_config", "kasa_config", "layer_replication",
          "layers_pattern", "layers_to_transform", "lora_ga_config", "megatron_config", "monteclora_config",
          "target_parameters", "trainable_token_indices", "use_bdlora", "velora_config"})
        c[null_field] = nullptr;
    c["alpha_pattern"] = nlohmann::json::object();
    c["rank_pattern"] = nlohmann::json::object();
    c["loftq_config"] = nlohmann::json::object();
    c["bias"] = "none";
    c["ensure_weight_tying"] = false;
    c["init_lora_weights"] = true;
    c["lora_alpha"] = alpha;
    c["lora_bias"] = false;
    c["lora_dropout"] = s.dropout;
    c["megatron_core"] = "megatron.core";
    c["qalora_group_size"] = 16;
    c["r"] = rank;
    c["use_dora"] = use_dora;
    c["use_qalora"] = false;
    c["use_rslora"] = false;
    return c;
}

inline void check_peft_config(PeftConfigCheck& c, int rank, int alpha, bool use_dora) {
    c.expect("peft_type", "LORA", nullptr);
    c.expect("r", rank, nullptr);
    c.expect("lora_alpha", alpha, nullptr);
    c.expect("bias", "none", "none");
    c.expect("fan_in_fan_out", false, false);
    c.expect("use_rslora", false, false);
    c.expect("use_dora", use_dora, false);
    c.expect("lora_bias", false, false);
    c.expect("rank_pattern", nlohmann::json::object(), nlohmann::json::object());
    c.expect("alpha_pattern", nlohmann::json::object(), nlohmann::json::object());
}

/// W += scale * B A on host copies.
template <class T>
void add_low_rank(AdaptedModule<T> const& m, Eigen::Map<Matrix<T>> w, double scale) {
    auto const& a = m.tensor(".lora_A.weight");
    auto const& b = m.tensor(".lora_B.weight");
    require(b.cols == a.rows && w.rows() == b.rows && w.cols() == a.cols, "merge: ", m.module, ": B (", b.rows, ", ",
            b.cols, ") A (", a.rows, ", ", a.cols, ") does not fit W (", w.rows(), ", ", w.cols(), ")");
    Eigen::Map<Matrix<T> const> const ma(a.values.data(), a.rows, a.cols);  // (r, in)
    Eigen::Map<Matrix<T> const> const mb(b.values.data(), b.rows, b.cols);  // (out, r)
    w.noalias() += (T(scale) * mb) * ma;
}

}  // namespace lora_detail

/// y = x W^T + b + (alpha / rank) * dropout(x) A^T B^T, with A (rank, in) and B (out, rank).
/// A starts as PEFT's kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B starts at zero,
/// so a fresh adapter leaves the base model's outputs unchanged. Dropout is a runtime option.
template <int Rank, int Alpha, class... Sites>
struct LoRA {
    static_assert(Rank > 0, "LoRA rank must be positive");
    static_assert(Alpha > 0, "LoRA alpha must be positive");
    static_assert(sizeof...(Sites) > 0, "LoRA needs at least one site, e.g. LoRA<8, 16, site::Qkv>");

    static constexpr std::string_view method = "lora";
    static constexpr std::string_view name = "LoRA";  ///< in messages and reports
    static constexpr bool trains_base = false;
    static constexpr bool has_dropout = true;
    static constexpr int rank = Rank;
    static constexpr int alpha = Alpha;
    static constexpr double scale = double(Alpha) / Rank;

    template <class Site>
    static constexpr bool applies_to = (std::is_same_v<Site, Sites> || ...);
    /// True when every site of this adapter is one the family has.
    template <class SiteList>
    static constexpr bool sites_within = (SiteList::template contains<Sites> && ...);

    template <class Backend, class T, int In, int Out, class Site>
    using Branch = LoraBranch<Backend, T, In, Out, LoRA>;
    template <int In, int Out, class Site>
    static constexpr Index parameter_count = Index(Rank) * (In + Out);
    /// Training FLOPs per token of one adapted projection: the adapter weights train, so they pay forward, dX and
    /// dW like any trained weight (PERFORMANCE.md section 4.1).
    template <int In, int Out, class Site>
    static constexpr double flops_per_token = 6.0 * double(parameter_count<In, Out, Site>);

    static constexpr std::array<std::string_view, 2> tensor_suffixes{".lora_A.weight", ".lora_B.weight"};

    template <class T>
    static nlohmann::json peft_config(PeftSettings const& s, std::vector<AdaptedModule<T>> const&) {
        return lora_detail::peft_config(s, Rank, Alpha, false);
    }
    template <class T>
    static void check_peft_config(PeftConfigCheck& c, std::vector<AdaptedModule<T>> const&) {
        lora_detail::check_peft_config(c, Rank, Alpha, false);
    }
    /// PEFT's merge_and_unload: W + (alpha / rank) B A; the bias is unchanged.
    template <class T>
    static void merge(AdaptedModule<T> const& m, Eigen::Map<Matrix<T>> w, T*) {
        lora_detail::add_low_rank(m, w, scale);
    }
};

}  // namespace polyalpaca
