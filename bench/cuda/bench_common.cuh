/// @file bench/cuda/bench_common.cuh
/// @brief What the CUDA benchmarks share: the device's peak table, cudaEvent timing, hand-parsed options and
/// device-memory tracking.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/memory_watch.cuh"
#include "polyalpaca/core/error.hpp"

namespace polyalpaca::bench {

/// Dense peaks of an H100 SXM5 (NVIDIA H100 datasheet, without sparsity); every "% of peak" uses these, whatever
/// device runs the program (the device's name is printed next to them).
struct Peaks {
    static constexpr double bf16_tflops = 989.4;
    static constexpr double tf32_tflops = 494.7;
    static constexpr double fp32_tflops = 66.9;
    static constexpr double hbm_tbps = 3.35;
};

inline void print_device(cuda::Context const& ctx) {
    cudaDeviceProp prop{};
    POLYALPACA_CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx.device()));
    std::printf("device: %s (%d SMs, %.1f GiB, compute capability %d.%d)\n", prop.name, prop.multiProcessorCount,
                double(prop.totalGlobalMem) / double(1ull << 30), prop.major, prop.minor);
    std::printf("peak table (H100 SXM, dense): bf16 %.1f TFLOP/s, tf32 %.1f TFLOP/s, fp32 %.1f TFLOP/s, HBM %.2f TB/s\n",
                Peaks::bf16_tflops, Peaks::tf32_tflops, Peaks::fp32_tflops, Peaks::hbm_tbps);
}

/// Mean milliseconds per call of f over `repeat` calls after `warmup` calls, timed with events on ctx's stream.
template <class F>
double time_ms(cuda::Context& ctx, int warmup, int repeat, F&& f) {
    for (int i = 0; i < warmup; ++i) f();
    cudaEvent_t start = nullptr, stop = nullptr;
    POLYALPACA_CUDA_CHECK(cudaEventCreate(&start));
    POLYALPACA_CUDA_CHECK(cudaEventCreate(&stop));
    POLYALPACA_CUDA_CHECK(cudaEventRecord(start, ctx.stream()));
    for (int i = 0; i < repeat; ++i) f();
    POLYALPACA_CUDA_CHECK(cudaEventRecord(stop, ctx.stream()));
    POLYALPACA_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    POLYALPACA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
    return double(ms) / double(repeat);
}

/// Minimal argv parsing: `--name value` pairs and bare `--flag`s.
class Args {
public:
    Args(int argc, char** argv) : args_(argv + 1, argv + argc) {}
    bool flag(char const* name) const {
        for (auto const& a : args_)
            if (a == name) return true;
        return false;
    }
    std::string value(char const* name, std::string const& fallback) const {
        for (std::size_t i = 0; i + 1 < args_.size(); ++i)
            if (args_[i] == name) return args_[i + 1];
        return fallback;
    }
    int integer(char const* name, int fallback) const {
        std::string const v = value(name, "");
        if (v.empty()) return fallback;
        char* end = nullptr;
        long const x = std::strtol(v.c_str(), &end, 10);
        require(end != v.c_str() && *end == '\0' && x > 0 && x < (1L << 30), "option ", name,
                " needs a positive integer, got '", v, "'");
        return int(x);
    }

private:
    std::vector<std::string> args_;
};

using cuda::MemoryWatch;  // backend/cuda/memory_watch.cuh

inline double gib(std::size_t bytes) { return double(bytes) / double(1ull << 30); }

}  // namespace polyalpaca::bench
