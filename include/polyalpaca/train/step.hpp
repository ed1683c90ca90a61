/// @file train/step.hpp
/// @brief One optimizer step: accumulate gradients over micro-batches, clip, check, update.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/distributed/communicator.hpp"
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
/// The update consumes the gradients: they are zero after a step (the clipped values are not kept), so the next
/// step need not zero them again.
///
/// Data parallel, with a communicator of several ranks (distributed/communicator.hpp): each rank passes its own
/// micro-batches of one global step, any number (none included, as long as some rank has one). Every micro-batch's
/// mean loss is scaled by 1 / (the step's micro-batches over all ranks) and the gradients are summed over the ranks
/// before clipping, so every rank clips by the global norm and makes the same update, that of one rank passing all
/// the step's micro-batches, up to the order of the sums; loss, tokens and scored are the global figures. With one
/// rank (SingleProcess, or an MPI or NCCL run of one) every sum is of one term and the step is the one-rank step bit
/// for bit.
///
/// `sharding` Zero1: the optimizer holds this rank's shard of the trainable values only (its size() is
/// shard_of(trainable, ranks, rank).count); the ranks sum the gradients shard by shard, the global norm is the root of
/// the shards' summed squares, and each rank updates its shard and sends it to the others. The update is the
/// Replicated one, up to the order of the sums.
template <class Net, class Optimizer, class Context, class Communicator>
    requires distributed::CommunicatorFor<Communicator, Context>
StepResult train_step(Context& ctx, Net& net, Optimizer& optimizer, std::span<TokenBatch const> micro_batches,
                      double lr, double max_grad_norm, long step_number, Communicator& communicator,
                      distributed::OptimizerSharding sharding = distributed::OptimizerSharding::Replicated) {
    int const ranks = communicator.size();
    auto& params = net.parameters();
    Index const trainable = params.trainable_count();
    bool const zero1 = sharding == distributed::OptimizerSharding::Zero1;
    distributed::Shard const shard =
        zero1 ? distributed::shard_of(trainable, ranks, communicator.rank()) : distributed::Shard{0, trainable};
    require(optimizer.size() == shard.count, "the optimizer holds ", optimizer.size(), " values but ",
            zero1 ? "this rank's ZeRO-1 shard" : "the network", " has ", shard.count);
    // Every collective is made whatever the number of ranks: over one rank each leaves the values as they are (a sum
    // of one term), and a communicator's one-rank path (NCCL's on one GPU, say) is the path it takes over many.
    std::array<double, 1> count{double(micro_batches.size())};
    communicator.all_reduce_sum(std::span<double>(count));
    double const micro_batch_count = count[0];
    require(micro_batch_count > 0, "a training step needs at least one micro-batch",
            ranks > 1 ? " on some rank" : "");
    set_profile_phase(ctx, Phase::Update);
    {
        ProfileRegion region(ctx, Region::Optimizer);
        params.zero_grads_if_written(ctx);  // the previous step's update left them zero
    }
    StepResult result;
    double loss_sum = 0;
    double const loss_scale = 1.0 / micro_batch_count;
    for (auto const& mb : micro_batches) {
        if (mb.dropout_key) net.key_dropout(*mb.dropout_key);
        auto const loss = net.forward_backward(ctx, mb, loss_scale);
        loss_sum += loss.sum;
        result.scored += loss.count;
        result.tokens += mb.tokens();
    }
    set_profile_phase(ctx, Phase::Update);
    ProfileRegion region(ctx, Region::Optimizer);
    using Value = std::remove_pointer_t<decltype(params.gradients())>;
    Value* const grads = params.gradients() + shard.begin;  // the gradients this rank clips and applies
    params.mark_gradients_written();  // the sums land in the arena (a rank without micro-batches wrote none before)
    if (zero1)
        communicator.reduce_scatter_sum(ctx, params.gradients(), trainable);
    else
        communicator.all_reduce_sum(ctx, params.gradients(), trainable);
    double squared_grad_norm = squared_norm(ctx, static_cast<Value const*>(grads), shard.count);
    // The global figures; under ZeRO-1 the squared norm is the sum of the shards'.
    std::array<double, 4> figures{loss_sum, double(result.scored), double(result.tokens),
                                  zero1 ? squared_grad_norm : 0.0};
    communicator.all_reduce_sum(std::span<double>(figures));
    loss_sum = figures[0];
    result.scored = std::int64_t(figures[1]);
    result.tokens = std::int64_t(figures[2]);
    if (zero1) squared_grad_norm = figures[3];
    result.loss = result.scored > 0 ? loss_sum / double(result.scored) : 0.0;
    require(std::isfinite(result.loss), "step ", step_number, ": the loss is not finite (", result.loss,
            "); weights were not updated");
    result.grad_norm = std::sqrt(squared_grad_norm);
    require(std::isfinite(result.grad_norm), "step ", step_number, ": the gradient norm is not finite (",
            result.grad_norm, "); weights were not updated");
    // clip_grad_norm's scaling with the global norm, applied by the update as it reads the gradients and zeroes them
    double const coefficient = max_grad_norm > 0 ? clip_coefficient(result.grad_norm, max_grad_norm) : 1.0;
    optimizer.step_consuming(ctx, params.trainable_values() + shard.begin, grads, lr, coefficient);
    if (zero1)
        communicator.all_gather(ctx, params.trainable_values(), trainable);
    else
        params.mark_gradients_zero();  // under ZeRO-1 only this rank's shard is
    return result;
}

/// The one-rank step (SingleProcess).
template <class Net, class Optimizer, class Context>
StepResult train_step(Context& ctx, Net& net, Optimizer& optimizer, std::span<TokenBatch const> micro_batches,
                      double lr, double max_grad_norm, long step_number) {
    distributed::SingleProcess one;
    return train_step(ctx, net, optimizer, micro_batches, lr, max_grad_norm, step_number, one);
}

}  // namespace polyalpaca
