/// @file backend/cpu_eigen.hpp
/// @brief The CpuEigen backend policy: host memory, Eigen math, ops in polyalpaca::cpu.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/device_info.hpp"
#include "polyalpaca/backend/cpu/activation.hpp"
#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cpu/attention_decode.hpp"
#include "polyalpaca/backend/cpu/dropout.hpp"
#include "polyalpaca/backend/cpu/embedding.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/backend/cpu/lm_head.hpp"
#include "polyalpaca/backend/cpu/loss.hpp"
#include "polyalpaca/backend/cpu/norm.hpp"
#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/backend/cpu/qkv.hpp"
#include "polyalpaca/backend/cpu/rows.hpp"
#include "polyalpaca/backend/cpu/scaling.hpp"
#include "polyalpaca/backend/cpu/rope.hpp"

namespace polyalpaca {

namespace cpu {
/// Allocates on 64-byte boundaries (a cache line, an AVX-512 vector). Vectorised reductions then see the same
/// alignment in every run, so results do not change with where the allocator happened to place a buffer.
template <class T>
struct CacheLineAllocator {
    using value_type = T;
    static constexpr std::align_val_t alignment{64};
    CacheLineAllocator() = default;
    template <class U>
    CacheLineAllocator(CacheLineAllocator<U> const&) {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
    void deallocate(T* p, std::size_t) {
        ::operator delete(p, alignment);
        detail::host_buffer_frees().fetch_add(1, std::memory_order_relaxed);  // see Bf16Gemms::weight
    }
    template <class U>
    bool operator==(CacheLineAllocator<U> const&) const { return true; }
};
}  // namespace cpu

/// Backend policy for the CPU. Layers use only what is named here and the ops found through Context.
struct CpuEigen {
    using Context = cpu::Context;
    static constexpr char const* name = "cpu-eigen";
    /// The LM head scores at most this many logits at once (256 MiB of fp32; the gradient overwrites them): 267
    /// rows of BLOOM's 250,880-entry vocabulary. Each chunk reads the whole 1 GB head twice (logits, then dX), so
    /// fewer, larger chunks read it fewer times (measured against 2^24: docs/performance.md, "Where a step's time
    /// goes").
    static constexpr std::int64_t lm_head_chunk_logits = std::int64_t(1) << 26;

    /// Owning storage for T; zero-initialised, 64-byte aligned.
    template <class T>
    using Buffer = std::vector<T, cpu::CacheLineAllocator<T>>;
    /// Measures the most memory a run held: the process's peak resident set.
    using MemoryMeter = cpu::PeakResidentMemory;

    // Writes tell the context, as they may land in a weight with a bf16 working copy (Context::parameters_written).
    template <class T>
    static void upload(Context& ctx, T const* host, T* dst, std::size_t n) {
        std::copy(host, host + n, dst);
        ctx.parameters_written(dst, n * sizeof(T));
    }
    template <class T>
    static void download(Context&, T const* src, T* host, std::size_t n) { std::copy(src, src + n, host); }
    template <class T>
    static void fill_zero(Context& ctx, T* dst, std::size_t n) {
        std::fill(dst, dst + n, T(0));
        ctx.parameters_written(dst, n * sizeof(T));
    }
    template <class T>
    static void copy(Context& ctx, T const* src, T* dst, std::size_t n) {
        std::copy(src, src + n, dst);
        ctx.parameters_written(dst, n * sizeof(T));
    }
    static void synchronize(Context&) {}
};

}  // namespace polyalpaca
