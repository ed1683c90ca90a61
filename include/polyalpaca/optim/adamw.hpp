/// @file optim/adamw.hpp
/// @brief AdamW over one flat array of trainable values, as torch.optim.AdamW, with saveable state.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// AdamW hyperparameters; the defaults are torch.optim.AdamW's. `lr` is used only by step() without an lr.
struct AdamWConfig {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;
};

/// AdamW for n trainable values laid out contiguously (a model's trainable arena). Backend supplies
/// `Context` and `Buffer<T>`; the update op is found by argument-dependent lookup through the Context.
/// State is exp_avg (n values) followed by exp_avg_sq (n values) in one buffer, plus the step count.
template <class Backend, class T>
class AdamW {
public:
    using Context = typename Backend::Context;
    using Buffer = typename Backend::template Buffer<T>;

    AdamW(Index n, AdamWConfig const& config = {}) : n_(n), config_(config) {
        require(n > 0, "AdamW needs at least one trainable value, got ", n, ".");
        check_config(config);
        moments_ = Buffer(static_cast<std::size_t>(2 * n));
    }

    /// One update of params (n values) with grads (n values) at learning rate lr.
    void step(Context& ctx, T* params, T const* grads, double lr) {
        require(params != nullptr && grads != nullptr, "AdamW::step: params and grads must not be null.");
        require(std::isfinite(lr) && lr >= 0, "AdamW::step: learning rate must be finite and non-negative, got ", lr,
                ".");
        ++step_;
        adamw_update(ctx, params, grads, exp_avg(), exp_avg_sq(), n_,
                     {lr, config_.beta1, config_.beta2, config_.eps, config_.weight_decay, step_});
    }
    /// One update from the gradients grads[i] * grad_scale (clipping's coefficient; 1 for none) that leaves grads
    /// zero for the next step's accumulation: the same update as scaling, step() and zeroing, in one pass.
    void step_consuming(Context& ctx, T* params, T* grads, double lr, double grad_scale) {
        require(params != nullptr && grads != nullptr, "AdamW::step: params and grads must not be null.");
        require(std::isfinite(lr) && lr >= 0, "AdamW::step: learning rate must be finite and non-negative, got ", lr,
                ".");
        require(std::isfinite(grad_scale) && grad_scale > 0 && grad_scale <= 1,
                "AdamW::step: the gradient scale must be in (0, 1], got ", grad_scale, ".");
        ++step_;
        adamw_update_consuming(ctx, params, grads, exp_avg(), exp_avg_sq(), n_,
                               {lr, config_.beta1, config_.beta2, config_.eps, config_.weight_decay, step_},
                               T(grad_scale));
    }
    /// One update at the configured lr.
    void step(Context& ctx, T* params, T const* grads) { step(ctx, params, grads, config_.lr); }
    /// One update, checking that params and grads both hold the n values this optimizer was made for.
    void step(Context& ctx, std::span<T> params, std::span<T const> grads, double lr) {
        require(Index(params.size()) == n_, "AdamW::step: optimizer was made for ", n_, " values but params has ",
                params.size(), ".");
        require(Index(grads.size()) == n_, "AdamW::step: optimizer was made for ", n_, " values but grads has ",
                grads.size(), ".");
        step(ctx, params.data(), grads.data(), lr);
    }

    Index size() const { return n_; }
    AdamWConfig const& config() const { return config_; }

    /// Updates completed so far (torch's state['step']).
    long step_count() const { return step_; }
    void set_step_count(long steps) {
        require(steps >= 0, "AdamW step count cannot be negative, got ", steps, ".");
        step_ = steps;
    }

    /// Both moments, exp_avg then exp_avg_sq: 2 * size() values, for saving and restoring.
    Buffer& moments() { return moments_; }
    Buffer const& moments() const { return moments_; }
    T* exp_avg() { return moments_.data(); }
    T const* exp_avg() const { return moments_.data(); }
    T* exp_avg_sq() { return moments_.data() + n_; }
    T const* exp_avg_sq() const { return moments_.data() + n_; }

private:
    // The checks torch.optim.AdamW makes in its constructor.
    static void check_config(AdamWConfig const& c) {
        require(c.lr >= 0, "AdamW: invalid learning rate ", c.lr, "; it must be non-negative.");
        require(c.eps >= 0, "AdamW: invalid epsilon ", c.eps, "; it must be non-negative.");
        require(c.beta1 >= 0 && c.beta1 < 1, "AdamW: invalid beta1 ", c.beta1, "; it must be in [0, 1).");
        require(c.beta2 >= 0 && c.beta2 < 1, "AdamW: invalid beta2 ", c.beta2, "; it must be in [0, 1).");
        require(c.weight_decay >= 0, "AdamW: invalid weight decay ", c.weight_decay, "; it must be non-negative.");
    }

    Index n_;
    AdamWConfig config_;
    Buffer moments_;
    long step_ = 0;
};

}  // namespace polyalpaca
