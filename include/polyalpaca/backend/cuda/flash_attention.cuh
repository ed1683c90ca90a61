/// @file backend/cuda/flash_attention.cuh
/// @brief Fused flash-style causal attention on CUDA (bf16 tensor cores in GemmMath::Bf16, else fp32 CUDA cores),
/// forward and backward, behind attention_forward / attention_backward when flash_attention_chosen (attention.cuh):
/// AttentionKernel::Flash, or the default AttentionKernel::Auto in GemmMath::Bf16 for head_dim <= 64.
///
/// Design. No (seq x seq) matrix exists in memory; the saved state is 2 floats per (batch, head, query) row,
/// [logsumexp of the row's scores, the head's ALiBi slope] (flash::state_cols; attention_backward receives no
/// slopes, so the forward keeps them). The per-block work lives in flash_attention_tile.hpp as per-thread phases
/// between barriers, so that tests/unit/flash_attention_tiles.cpp runs exactly this code, thread by thread, on
/// the host; this file only launches it. Tiles are 64 query rows x 64 keys for head_dim <= 64, 32 x 32 above
/// (shared memory), 4 threads per row; K/V (and Q/dO) tiles are staged in shared memory with one padding
/// column; key tiles past the diagonal are never visited. In the fp32 set, all sums are fp32 on CUDA cores.
/// - forward: one block per (batch, head, query tile), last (heaviest) tiles first; online softmax over the key
///   tiles 0..diagonal; writes out and the state.
/// - backward kernel 1: one block per (batch, head, query tile): D_i = rowsum(dO_i * O_i) into scratch, from the
///   forward's out when the caller passes it, else by a pass over the key tiles as sum_j P_ij dO_i.v_j (P
///   recomputed from the saved logsumexp); then, when dq is wanted, a pass over the key tiles forms
///   dS = P (dP - D) and adds scale dS K into dq.
/// - backward kernel 2: one block per (batch, kv head, key tile), first (heaviest) tiles first: loops over the
///   group's query heads and the query tiles from the diagonal on, accumulates dV = P^T dO and dK = scale dS^T Q
///   in registers and adds them into dv and dk once. Every output element has exactly one writer, so the result
///   is deterministic and needs no atomics.
/// Two sets of these kernels, chosen by ctx.gemm_math() as the GEMM path's precision is: in GemmMath::Bf16 the
/// tensor-core kernels (flash_attention_mma_tile.hpp: every tile product a wmma bf16 product with fp32
/// accumulation, the softmax and the accumulators fp32), in Fp32 and Tf32 the fp32 CUDA-core kernels above.
/// Both use the same tiles, grid and saved state.
/// Head dims 32, 64, 80, 96 and 128 are instantiated unless POLYALPACA_FLASH_HEAD_DIMS names fewer
/// (flash_attention_tile.hpp); any other runs the GEMM path (attention.cuh decides, and attention_state_cols says
/// which state size it needs).
/// Scratch: slot 4, the attention slot (the forward's device copy of the slopes; the backward's D per row),
/// reused by the next attention call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/flash_attention_mma_tile.hpp"
#include "polyalpaca/backend/cuda/flash_attention_tile.hpp"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace flash {

inline constexpr int scratch_slot = cuda::scratch_slot::attention;

/// op's C on tensor cores: warp w of the block computes the 16 x 16 tiles w, w + warps, ... of C (row-major
/// tile order), each from bf16 16x16x16 wmma fragments loaded straight from shared memory, with fp32
/// accumulation. The caller's layout (flash_attention_mma_tile.hpp) keeps every fragment pointer 32-byte aligned
/// and every leading dimension a multiple of 16 bytes.
template <bool TransposedB>
__device__ inline void tile_product(TileProduct<TransposedB> const& op) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    namespace wmma = nvcuda::wmma;
    using BLayout = std::conditional_t<TransposedB, wmma::col_major, wmma::row_major>;
    auto const* a = reinterpret_cast<__nv_bfloat16 const*>(op.a);
    auto const* b = reinterpret_cast<__nv_bfloat16 const*>(op.b);
    int const warp = int(threadIdx.x) / 32, warps = int(blockDim.x) / 32;
    int const tiles_n = op.n / 16, tiles = (op.m / 16) * tiles_n;
    for (int tile = warp; tile < tiles; tile += warps) {
        int const i = (tile / tiles_n) * 16, j = (tile % tiles_n) * 16;
        float* c = op.c + i * op.ldc + j;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        if (op.accumulate)
            wmma::load_matrix_sync(acc, c, unsigned(op.ldc), wmma::mem_row_major);
        else
            wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < op.k; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, BLayout> fb;
            wmma::load_matrix_sync(fa, a + i * op.lda + kk, unsigned(op.lda));
            // B (k x n) at (kk, j): b[kk * ldb + j] row-major, or b[j * ldb + kk] when stored transposed.
            wmma::load_matrix_sync(fb, TransposedB ? b + j * op.ldb + kk : b + kk * op.ldb + j, unsigned(op.ldb));
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(c, acc, unsigned(op.ldc), wmma::mem_row_major);
    }
#else
    __trap();  // bf16 wmma needs sm_80 or newer; the build targets 80 and 90 (cmake/PolyalpacaCuda.cmake)
#endif
}

/// The device's block: a phase runs on this thread with its registers, then the block waits at a barrier; a
/// tile product runs on the block's warps, then the block waits.
template <class State>
struct DeviceBlock {
    State state;
    template <class F>
    __device__ void each(F&& phase) {
        phase(int(threadIdx.x), state);
        __syncthreads();
    }
    template <bool TransposedB>
    __device__ void product(TileProduct<TransposedB> const& op) {
        tile_product(op);
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

template <int D>
__global__ void __launch_bounds__(MmaGeometry<D>::threads) mma_forward_kernel(Problem p) {
    extern __shared__ __align__(128) unsigned char mma_smem[];
    DeviceBlock<MmaForwardThread<D>> run;
    mma_forward_block<D>(p, int(blockIdx.x), mma_smem, run);
}

template <int D>
__global__ void __launch_bounds__(MmaGeometry<D>::threads) mma_backward_dq_kernel(Problem p) {
    extern __shared__ __align__(128) unsigned char mma_smem[];
    DeviceBlock<MmaDqThread<D>> run;
    mma_backward_dq_block<D>(p, int(blockIdx.x), mma_smem, run);
}

template <int D>
__global__ void __launch_bounds__(MmaGeometry<D>::threads) mma_backward_dkv_kernel(Problem p) {
    extern __shared__ __align__(128) unsigned char mma_smem[];
    DeviceBlock<MmaDkvThread> run;
    mma_backward_dkv_block<D>(p, int(blockIdx.x), mma_smem, run);
}

/// 163 KiB: the most shared memory one block may use on an A100 (sm_80); an H100 allows 227 KiB.
inline constexpr std::size_t max_shared_bytes = 163 * 1024;
template <int D>
constexpr bool fits_shared() {
    using G = Geometry<D>;
    using M = MmaGeometry<D>;
    return std::size_t(G::forward_floats) * sizeof(float) <= max_shared_bytes &&
           std::size_t(G::dq_floats) * sizeof(float) <= max_shared_bytes &&
           std::size_t(G::dkv_floats) * sizeof(float) <= max_shared_bytes &&
           std::size_t(M::forward_bytes) <= max_shared_bytes && std::size_t(M::dq_bytes) <= max_shared_bytes &&
           std::size_t(M::dkv_bytes) <= max_shared_bytes;
}

template <class Kernel>
void launch(Context& ctx, Kernel kernel, std::int64_t blocks, int threads, std::size_t bytes, Problem const& p,
            char const* name) {
    POLYALPACA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    kernel<<<unsigned(blocks), unsigned(threads), bytes, ctx.stream()>>>(p);
    detail::check_launch(name);
}

inline constexpr std::size_t float_bytes(int floats) { return std::size_t(floats) * sizeof(float); }

/// The forward: on tensor cores when `tensor_cores`, else the fp32 kernels.
template <int D>
void forward(Context& ctx, Problem const& p, bool tensor_cores) {
    using G = Geometry<D>;
    using M = MmaGeometry<D>;
    static_assert(fits_shared<D>(), "a flash attention tile does not fit in an A100's shared memory");
    static_assert(M::rows == G::rows, "both kernel sets share one grid (query_blocks, key_blocks)");
    if (tensor_cores)
        launch(ctx, mma_forward_kernel<D>, query_blocks<D>(p), M::threads, std::size_t(M::forward_bytes), p,
               "flash::mma_forward_kernel");
    else
        launch(ctx, forward_kernel<D>, query_blocks<D>(p), G::threads, float_bytes(G::forward_floats), p,
               "flash::forward_kernel");
}

template <int D>
void backward(Context& ctx, Problem const& p, bool tensor_cores) {
    using G = Geometry<D>;
    using M = MmaGeometry<D>;
    if (p.dq || p.dk) {
        if (tensor_cores)
            launch(ctx, mma_backward_dq_kernel<D>, query_blocks<D>(p), M::threads, std::size_t(M::dq_bytes), p,
                   "flash::mma_backward_dq_kernel");
        else
            launch(ctx, backward_dq_kernel<D>, query_blocks<D>(p), G::threads, float_bytes(G::dq_floats), p,
                   "flash::backward_dq_kernel");
    }
    if (p.dk || p.dv) {
        if (tensor_cores)
            launch(ctx, mma_backward_dkv_kernel<D>, key_blocks<D>(p), M::threads, std::size_t(M::dkv_bytes), p,
                   "flash::mma_backward_dkv_kernel");
        else
            launch(ctx, backward_dkv_kernel<D>, key_blocks<D>(p), G::threads, float_bytes(G::dkv_floats), p,
                   "flash::backward_dkv_kernel");
    }
}

/// The tensor-core kernels run in GemmMath::Bf16, the fp32 ones otherwise.
inline bool tensor_cores(Context const& ctx) { return ctx.gemm_math() == GemmMath::Bf16; }

/// Calls f.template operator()<D>() for D == head_dim, one of `Ds`.
template <class F, int... Ds>
void dispatch(HeadDims<Ds...>, int head_dim, F&& f) {
    bool const found = ((head_dim == Ds ? (f.template operator()<Ds>(), true) : false) || ... || false);
    if (!found)
        fail("flash attention: head_dim ", head_dim, " is not among the instantiated POLYALPACA_FLASH_HEAD_DIMS");
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
        auto* slopes = static_cast<float*>(ctx.scratch(flash::scratch_slot, flash_slopes_bytes(shape.heads)));
        POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(slopes, alibi_slopes, std::size_t(shape.heads) * sizeof(float),
                                              cudaMemcpyHostToDevice, ctx.stream()));
        p.slopes = slopes;
    }
    flash::dispatch(flash::InstantiatedHeadDims{}, shape.head_dim,
                    [&]<int D>() { flash::forward<D>(ctx, p, flash::tensor_cores(ctx)); });
}

/// Flash backward on checked views: dq, dk, dv (any may have a null data) ADDED into. saved_out is the forward's
/// out (batch*seq, heads*hd) or nullptr (see Problem::saved_out).
inline void flash_attention_backward(Context& ctx, View<float const> dout, float const* saved_out, View<float const> q,
                                     View<float const> k, View<float const> v, View<float const> state,
                                     View<float> dq, View<float> dk, View<float> dv, AttentionShape const& shape,
                                     float scale) {
    if (!dq.data && !dk.data && !dv.data) return;
    ctx.make_current();
    auto p = flash::problem(shape, q.data, k.data, v.data, scale);
    p.state = const_cast<float*>(state.data);  // the backward only reads it
    p.state_ld = state.cols;
    p.dout = dout.data;
    p.saved_out = saved_out;
    p.dq = dq.data;
    p.dk = dk.data;
    p.dv = dv.data;
    if (dq.data || dk.data)
        p.delta = static_cast<float*>(ctx.scratch(flash::scratch_slot, flash_delta_bytes(state.rows)));  // (B*H*seq)
    flash::dispatch(flash::InstantiatedHeadDims{}, shape.head_dim,
                    [&]<int D>() { flash::backward<D>(ctx, p, flash::tensor_cores(ctx)); });
}

}  // namespace polyalpaca::cuda
