/// @file backend/cuda/memory_watch.cuh
/// @brief MemoryWatch: the peak device memory a process's work holds, sampled between steps (benchmarks, the study
///        engine's measured peak against its plan).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"

namespace polyalpaca::cuda {

/// Device memory this process allocated: total - free (every allocator counts) less the baseline taken at
/// construction (the CUDA context itself), with the stream-ordered pool's high-water mark added in, since the
/// pool may hand memory back between samples. sample() after each step; peak() is the largest value seen.
class MemoryWatch {
public:
    explicit MemoryWatch(int device) {
        POLYALPACA_CUDA_CHECK(cudaSetDevice(device));
        POLYALPACA_CUDA_CHECK(cudaFree(nullptr));  // creates the context, so the baseline includes it
        POLYALPACA_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device));
        POLYALPACA_CUDA_CHECK(cudaDeviceSynchronize());
        POLYALPACA_CUDA_CHECK(cudaMemPoolTrimTo(pool_, 0));  // forget what earlier users of the pool held
        std::uint64_t zero = 0;
        POLYALPACA_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReservedMemHigh, &zero));
        baseline_ = used();
    }
    static std::size_t used() {
        std::size_t free = 0, total = 0;
        POLYALPACA_CUDA_CHECK(cudaMemGetInfo(&free, &total));
        return total - free;
    }
    void sample() {
        std::uint64_t reserved = 0, reserved_high = 0;
        POLYALPACA_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
        POLYALPACA_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemHigh, &reserved_high));
        std::size_t const now = used();
        std::size_t const outside_pool = now > baseline_ + reserved ? now - baseline_ - reserved : 0;
        peak_ = std::max(peak_, outside_pool + std::size_t(reserved_high));
    }
    std::size_t peak() const { return peak_; }

private:
    cudaMemPool_t pool_ = nullptr;
    std::size_t baseline_ = 0;
    std::size_t peak_ = 0;
};

}  // namespace polyalpaca::cuda
