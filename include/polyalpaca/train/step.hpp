/// @file train/step.hpp
/// @brief One optimizer step: accumulate gradients over micro-batches, clip, check, update.
#pragma once

#include <cmath>
#include <span>

#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/optim/clip.hpp"

namespace polyalpaca {

struct StepResult {
    double loss = 0;              ///< mean token loss over all micro-batches of the step
    std::int64_t tokens = 0;      ///< tokens processed (padding included)
    std::int64_t scored = 0;      ///< tokens that carried a label
    double grad_norm = 0;         ///< global gradient norm before clipping
};

/// Gradient accumulation as HF Trainer does it: each micro-batch's mean loss is scaled by
/// 1 / micro_batches.size(), so the step's gradient is the mean of the micro-batch gradients.
/// Throws (naming the step) when the loss or the gradient norm is not finite; the weights are then untouched.
template <class Net, class Optimizer, class Context>
StepResult train_step(Context& ctx, Net& net, Optimizer& optimizer, std::span<TokenBatch const> micro_batches,
                      double lr, double max_grad_norm, long step_number) {
    require(!micro_batches.empty(), "a training step needs at least one micro-batch");
    auto& params = net.parameters();
    set_profile_phase(ctx, Phase::Update);
    {
        ProfileRegion region(ctx, Region::Optimizer);
        params.zero_grads(ctx);
    }
    StepResult result;
    double loss_sum = 0;
    double const scale = 1.0 / double(micro_batches.size());
    for (auto const& mb : micro_batches) {
        auto const loss = net.forward_backward(ctx, mb, scale);
        loss_sum += loss.sum;
        result.scored += loss.count;
        result.tokens += mb.tokens();
    }
    result.loss = result.scored > 0 ? loss_sum / double(result.scored) : 0.0;
    set_profile_phase(ctx, Phase::Update);
    ProfileRegion region(ctx, Region::Optimizer);
    require(std::isfinite(result.loss), "step ", step_number, ": the loss is not finite (", result.loss,
            "); weights were not updated");
    result.grad_norm = max_grad_norm > 0
                           ? clip_grad_norm(ctx, params.gradients(), params.trainable_count(), max_grad_norm)
                           : std::sqrt(squared_norm(ctx, params.gradients(), params.trainable_count()));
    require(std::isfinite(result.grad_norm), "step ", step_number, ": the gradient norm is not finite (",
            result.grad_norm, "); weights were not updated");
    optimizer.step(ctx, params.trainable_values(), params.gradients(), lr);
    return result;
}

}  // namespace polyalpaca
