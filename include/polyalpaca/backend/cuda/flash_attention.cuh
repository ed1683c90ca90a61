/// @file backend/cuda/flash_attention.cuh
/// @brief Fused flash-style causal attention on CUDA (fp32, CUDA cores), forward and backward, behind
/// attention_forward / attention_backward when Context::attention_kernel() is AttentionKernel::Flash.
///
/// Design. No (seq x seq) matrix exists in memory; the saved state is 2 floats per (batch, head, query) row,
/// [logsumexp of the row's scores, the head's ALiBi slope] (flash::state_cols; attention_backward receives no
/// slopes, so the forward keeps them). The per-block work lives in flash_attention_tile.hpp as per-thread phases
/// between barriers, so that tests/unit/flash_attention_tiles.cpp runs exactly this code, thread by thread, on
/// the host; this file only launches it. Tiles are 64 query rows x 64 keys for head_dim <= 64, 32 x 32 above
/// (shared memory), 4 threads per row; K/V (and Q/dO) tiles are staged in shared memory with one padding
/// column; key tiles past the diagonal are never visited. All sums are fp32 on CUDA cores, no tensor cores.
/// - forward: one block per (batch, head, query tile), last (heaviest) tiles first; online softmax over the key
///   tiles 0..diagonal; writes out and the state.
/// - backward kernel 1: one block per (batch, head, query tile): D_i = sum_j P_ij dO_i.v_j (= rowsum(dO_i * O_i),
///   P recomputed from the saved logsumexp) into scratch, then, when dq is wanted, a second pass over the key
///   tiles forms dS = P (dP - D) and adds scale dS K into dq.
/// - backward kernel 2: one block per (batch, kv head, key tile), first (heaviest) tiles first: loops over the
///   group's query heads and the query tiles from the diagonal on, accumulates dV = P^T dO and dK = scale dS^T Q
///   in registers and adds them into dv and dk once. Every output element has exactly one writer, so the result
///   is deterministic and needs no atomics.
/// Head dims 32, 64, 80, 96 and 128 are instantiated; any other runs the GEMM path (attention.cuh decides, and
/// attention_state_cols says which state size it needs).
/// Scratch: slot 4, the attention slot (the forward's device copy of the slopes; the backward's D per row),
/// reused by the next attention call.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/flash_attention_tile.hpp"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace flash {

inline constexpr int scratch_slot = 4;

/// The device's block: a phase runs on this thread with its registers, then the block waits at a barrier.
template <class State>
struct DeviceBlock {
    State state;
    template <class F>
    __device__ void each(F&& phase) {
        phase(int(threadIdx.x), state);
        __syncthreads();
    }
};

template <int D>
__global__ void __launch_bounds__(Geometry<D>::threads) forward_kernel(Problem p) {
    extern __shared__ float smem[];
    DeviceBlock<ForwardThread<D>> run;
    forward_block<D>(p, int(blockIdx.x), smem, run);
}

template <int D>
__global__ void __launch_bounds__(Geometry<D>::threads) backward_dq_kernel(Problem p) {
    extern __shared__ float smem[];
    DeviceBlock<DqThread<D>> run;
    backward_dq_block<D>(p, int(blockIdx.x), smem, run);
}

template <int D>
__global__ void __launch_bounds__(Geometry<D>::threads) backward_dkv_kernel(Problem p) {
    extern __shared__ float smem[];
    DeviceBlock<DkvThread<D>> run;
    backward_dkv_block<D>(p, int(blockIdx.x), smem, run);
}

/// 163 KiB: the most shared memory one block may use on an A100 (sm_80); an H100 allows 227 KiB.
inline constexpr std::size_t max_shared_bytes = 163 * 1024;
template <int D>
constexpr bool fits_shared() {
    using G = Geometry<D>;
    return std::size_t(G::forward_floats) * sizeof(float) <= max_shared_bytes &&
           std::size_t(G::dq_floats) * sizeof(float) <= max_shared_bytes &&
           std::size_t(G::dkv_floats) * sizeof(float) <= max_shared_bytes;
}

template <class Kernel>
void launch(Context& ctx, Kernel kernel, std::int64_t blocks, int threads, int floats, Problem const& p,
            char const* name) {
    std::size_t const bytes = std::size_t(floats) * sizeof(float);
    POLYALPACA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    kernel<<<unsigned(blocks), unsigned(threads), bytes, ctx.stream()>>>(p);
    detail::check_launch(name);
}

template <int D>
void forward(Context& ctx, Problem const& p) {
    using G = Geometry<D>;
    static_assert(fits_shared<D>(), "a flash attention tile does not fit in an A100's shared memory");
    launch(ctx, forward_kernel<D>, query_blocks<D>(p), G::threads, G::forward_floats, p, "flash::forward_kernel");
}

template <int D>
void backward(Context& ctx, Problem const& p) {
    using G = Geometry<D>;
    if (p.dq || p.dk)
        launch(ctx, backward_dq_kernel<D>, query_blocks<D>(p), G::threads, G::dq_floats, p,
               "flash::backward_dq_kernel");
    if (p.dk || p.dv)
        launch(ctx, backward_dkv_kernel<D>, key_blocks<D>(p), G::threads, G::dkv_floats, p,
               "flash::backward_dkv_kernel");
}

/// Calls f.template operator()<D>() for the instantiated head_dim D of `head_dim`.
template <class F>
void dispatch(int head_dim, F&& f) {
    switch (head_dim) {
        case 32: return f.template operator()<32>();
        case 64: return f.template operator()<64>();
        case 80: return f.template operator()<80>();
        case 96: return f.template operator()<96>();
        case 128: return f.template operator()<128>();
        default: fail("flash attention: head_dim ", head_dim, " is not instantiated (32, 64, 80, 96 or 128)");
    }
}

}  // namespace flash

/// Flash forward on checked views (attention.cuh): out written, state (batch*heads*seq, >= 2) gets [lse, slope]
/// in its first two columns. alibi_slopes is a host array of `heads` slopes or nullptr.
inline void flash_attention_forward(Context& ctx, View<float const> q, View<float const> k, View<float const> v,
                                    View<float> out, View<float> state, AttentionShape const& shape,
                                    float const* alibi_slopes, float scale) {
    ctx.make_current();
    auto p = flash::problem(shape, q.data, k.data, v.data, scale);
    p.out = out.data;
    p.state = state.data;
    p.state_ld = state.cols;
    if (alibi_slopes) {
        auto* slopes = static_cast<float*>(ctx.scratch(flash::scratch_slot, std::size_t(shape.heads) * sizeof(float)));
        POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(slopes, alibi_slopes, std::size_t(shape.heads) * sizeof(float),
                                              cudaMemcpyHostToDevice, ctx.stream()));
        p.slopes = slopes;
    }
    flash::dispatch(shape.head_dim, [&]<int D>() { flash::forward<D>(ctx, p); });
}

/// Flash backward on checked views: dq, dk, dv (any may have a null data) ADDED into.
inline void flash_attention_backward(Context& ctx, View<float const> dout, View<float const> q, View<float const> k,
                                     View<float const> v, View<float const> state, View<float> dq, View<float> dk,
                                     View<float> dv, AttentionShape const& shape, float scale) {
    if (!dq.data && !dk.data && !dv.data) return;
    ctx.make_current();
    auto p = flash::problem(shape, q.data, k.data, v.data, scale);
    p.state = const_cast<float*>(state.data);  // the backward only reads it
    p.state_ld = state.cols;
    p.dout = dout.data;
    p.dq = dq.data;
    p.dk = dk.data;
    p.dv = dv.data;
    if (dq.data || dk.data)
        p.delta = static_cast<float*>(
            ctx.scratch(flash::scratch_slot, std::size_t(state.rows) * sizeof(float)));  // (batch*heads*seq)
    flash::dispatch(shape.head_dim, [&]<int D>() { flash::backward<D>(ctx, p); });
}

}  // namespace polyalpaca::cuda
