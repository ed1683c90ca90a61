/// @file backend/cuda/loss.cuh
/// @brief Token-level cross-entropy over device logits with an ignore index, with the contract of cpu/loss.hpp:
/// returns the loss sum and count on the host and WRITES dlogits (which may alias logits).
///
/// One block per row: each thread keeps an online (max, sum of exp) over its strided share of the vocabulary in
/// fp32, the block combines them (the sum in double) and the row's log-sum-exp and loss are double. The per-row
/// losses come back to the host and are summed there in row order (deterministic). Scratch: slot 5.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/block_reduce.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

inline constexpr int loss_scratch_slot = scratch_slot::loss;
inline constexpr int loss_threads = 1024;

/// Row r: loss[r] = logsumexp(logits[r]) - logits[r][t] (0 on ignored rows). With grad, the row of dlogits
/// becomes grad_scale * (softmax - onehot(t)), or 0 on ignored rows, computed in fp32 and stored as G (float, or
/// bf16 rounded to nearest even). dlogits may alias logits (G = T): every read of the row happens before the block
/// barrier inside the reductions, every write after it.
template <class T, class G = T>
__global__ void cross_entropy_kernel(T const* logits, Index vocab, std::int32_t const* targets, int ignore_index,
                                     G* dlogits, float grad_scale, double* loss) {
    Index const r = blockIdx.x;
    T const* row = logits + r * vocab;
    std::int32_t const t = targets[r];
    if (t == ignore_index) {
        if (threadIdx.x == 0) loss[r] = 0.0;
        if (dlogits)
            for (Index j = threadIdx.x; j < vocab; j += blockDim.x) dlogits[r * vocab + j] = G(0.0f);
        return;  // the whole block takes this branch: t is the same for every thread
    }
    float m = -INFINITY, s = 0.0f;  // this thread's running max and sum of exp(x - m)
    for (Index j = threadIdx.x; j < vocab; j += blockDim.x) {
        float const x = float(row[j]);
        if (x > m) {
            s = s * expf(m - x) + 1.0f;
            m = x;
        } else if (x != -INFINITY) {
            s += expf(x - m);
        }
    }
    float const target_logit = float(row[t]);  // read before any thread writes the row
    float const row_max = block_max(m);
    double const scaled = m == -INFINITY ? 0.0 : double(s) * exp(double(m) - double(row_max));
    double const sum_exp = block_sum(scaled);
    double const log_sum_exp = double(row_max) + log(sum_exp);
    if (threadIdx.x == 0) loss[r] = log_sum_exp - double(target_logit);
    if (!dlogits) return;
    G* grad = dlogits + r * vocab;
    for (Index j = threadIdx.x; j < vocab; j += blockDim.x) {
        float const p = float(exp(double(row[j]) - log_sum_exp));
        grad[j] = G(grad_scale * (j == t ? p - 1.0f : p));
    }
}

/// cross_entropy (below) with dlogits stored as G: float, or __nv_bfloat16 (lm_head.cuh). dlogits is (N, V) with
/// row stride V, or nullptr.
template <class G>
inline LossSum cross_entropy_into(Context& ctx, View<float const> logits, std::span<std::int32_t const> targets,
                                  int ignore_index, G* dlogits, float grad_scale) {
    require(!logits.empty(), "cross_entropy: logits is empty");
    Index const n = logits.rows, vocab = logits.cols;
    require(Index(targets.size()) == n, "cross_entropy: targets has ", targets.size(), " entries, logits has ", n,
            " rows");
    require(n < (Index(1) << 31), "cross_entropy: ", n, " rows exceed the grid limit 2^31 - 1");
    Index count = 0;
    for (Index r = 0; r < n; ++r) {
        std::int32_t const t = targets[std::size_t(r)];
        require(t == ignore_index || (t >= 0 && t < vocab), "cross_entropy: target ", t, " at row ", r,
                " is outside [0, ", vocab, ") and is not the ignore index ", ignore_index);
        if (t != ignore_index) ++count;
    }
    ctx.make_current();

    std::size_t const target_bytes = loss_targets_bytes(n);
    auto* base = static_cast<char*>(ctx.scratch(loss_scratch_slot, loss_bytes(n)));
    auto* device_targets = reinterpret_cast<std::int32_t*>(base);
    auto* device_loss = reinterpret_cast<double*>(base + target_bytes);
    POLYALPACA_CUDA_CHECK(
        cudaMemcpyAsync(device_targets, targets.data(), targets.size_bytes(), cudaMemcpyHostToDevice, ctx.stream()));
    cross_entropy_kernel<float, G><<<unsigned(n), loss_threads, 0, ctx.stream()>>>(
        logits.data, vocab, device_targets, ignore_index, dlogits, grad_scale, device_loss);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());

    std::vector<double> losses(static_cast<std::size_t>(n));
    POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(losses.data(), device_loss, losses.size() * sizeof(double),
                                          cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    LossSum total;
    for (Index r = 0; r < n; ++r)
        if (targets[std::size_t(r)] != ignore_index) total.sum += losses[std::size_t(r)];
    total.count = count;
    return total;
}

}  // namespace detail

/// Per row r with target t = targets[r] != ignore_index: loss_r = logsumexp(logits[r]) - logits[r][t]. Returns
/// the sum of loss_r and the number of such rows (waits for the stream). When dlogits.data is not null it is
/// WRITTEN: grad_scale * (softmax(logits[r]) - onehot(t)) on counted rows, 0 on ignored rows; it may alias
/// logits. logits (N, V) and dlogits are device memory; targets is a host span. A target outside [0, V) that is
/// not ignore_index throws. Mutable logits convert to View<float const> implicitly (no template deduction here).
inline LossSum cross_entropy(Context& ctx, View<float const> logits, std::span<std::int32_t const> targets,
                             int ignore_index, View<float> dlogits, float grad_scale) {
    if (dlogits.data) require_shape(dlogits, logits.rows, logits.cols, "cross_entropy: dlogits");
    return detail::cross_entropy_into(ctx, logits, targets, ignore_index, dlogits.data, grad_scale);
}

}  // namespace polyalpaca::cuda
