/// @file backend/cuda.cuh
/// @brief The Cuda backend policy: device memory, CUDA kernels and cuBLASLt, ops in polyalpaca::cuda. fp32
/// storage everywhere (the master weights); GEMM math follows the Context's gemm_math(), and in Bf16 the weights
/// are multiplied from the Context's bf16 working copies, which every write into device memory through this
/// policy (upload, fill_zero) or the optimizer ops marks out of date (Context::parameters_written).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/activation.cuh"
#include "polyalpaca/backend/cuda/attention.cuh"
#include "polyalpaca/backend/cuda/attention_decode.cuh"
#include "polyalpaca/backend/cuda/buffer.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/dropout.cuh"
#include "polyalpaca/backend/cuda/embedding.cuh"
#include "polyalpaca/backend/cuda/frozen_bf16.cuh"
#include "polyalpaca/backend/cuda/gemm.cuh"
#include "polyalpaca/backend/cuda/lm_head.cuh"
#include "polyalpaca/backend/cuda/loss.cuh"
#include "polyalpaca/backend/cuda/memory_watch.cuh"
#include "polyalpaca/backend/cuda/norm.cuh"
#include "polyalpaca/backend/cuda/optim_ops.cuh"
#include "polyalpaca/backend/cuda/qkv.cuh"
#include "polyalpaca/backend/cuda/rope.cuh"
#include "polyalpaca/backend/cuda/rows.cuh"
#include "polyalpaca/backend/cuda/scaling.cuh"

namespace polyalpaca {

namespace cuda {
/// Device memory that starts zeroed, as CpuEigen's buffers do: layers rely on fresh buffers holding zeros.
/// The zeroing finishes before the constructor returns, so any stream may use the buffer at once.
template <class T>
class ZeroedBuffer : public DeviceBuffer<T> {
public:
    ZeroedBuffer() = default;
    explicit ZeroedBuffer(std::size_t size) : DeviceBuffer<T>(size) {
        if (size == 0) return;
        POLYALPACA_CUDA_CHECK(cudaMemset(this->data(), 0, size * sizeof(T)));
        POLYALPACA_CUDA_CHECK(cudaDeviceSynchronize());
    }
};
}  // namespace cuda

/// Backend policy for one NVIDIA GPU. Layers use only what is named here and the ops found through Context.
/// Buffers and views hold device pointers; the host never dereferences them (upload/download copy).
struct Cuda {
    using Context = cuda::Context;
    static constexpr char const* name = "cuda";
    /// The LM head scores at most this many logits at once: 2^27, 534 rows of BLOOM's vocabulary
    /// (cuda/op_memory.hpp, which the memory plan reads too).
    static constexpr std::int64_t lm_head_chunk_logits = cuda::lm_head_chunk_logits;

    /// Owning device storage for T; zero-initialised; allocated on the calling thread's current device.
    template <class T>
    using Buffer = cuda::ZeroedBuffer<T>;
    /// Measures the most device memory a run held (create it before the Context; sample() between steps).
    using MemoryMeter = cuda::MemoryWatch;
    /// Keeps a loaded network's frozen weight matrices in bf16 only (under LoRA, in GemmMath::Bf16).
    using FrozenWeightsInBf16 = cuda::FrozenInBf16;

    /// Host -> device; returns when the copy is done (safe from any host thread, e.g. OpenMP workers).
    template <class T>
    static void upload(Context& ctx, T const* host, T* dst, std::size_t n) {
        if (n == 0) return;
        ctx.make_current();
        cuda::upload(ctx, host, dst, n);
    }
    /// Device -> host; waits for the stream, so it also reports errors from earlier kernels.
    template <class T>
    static void download(Context& ctx, T const* src, T* host, std::size_t n) {
        if (n == 0) return;
        require(!ctx.touches_resident_weight(src, n * sizeof(T)), "download: the weight is kept in bf16 only "
                "(cuda/frozen_bf16.cuh); its fp32 values are gone");
        ctx.make_current();
        cuda::download(ctx, src, host, n);
    }
    /// Queued on the stream, like every op.
    template <class T>
    static void fill_zero(Context& ctx, T* dst, std::size_t n) {
        if (n == 0) return;
        ctx.make_current();
        cuda::fill_zero(ctx, dst, n);
    }
    /// Device -> device, queued on the stream; tells ctx the destination was written, like upload.
    template <class T>
    static void copy(Context& ctx, T const* src, T* dst, std::size_t n) {
        if (n == 0) return;
        ctx.make_current();
        cuda::copy(ctx, src, dst, n);
    }
    static void synchronize(Context& ctx) { ctx.synchronize(); }
};

}  // namespace polyalpaca
