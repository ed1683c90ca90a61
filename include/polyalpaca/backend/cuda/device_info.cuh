/// @file backend/cuda/device_info.cuh
/// @brief The GPU a CUDA context runs on, for reports and plans: name, memory and free memory (DeviceInfo).
#pragma once

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/device_info.hpp"

namespace polyalpaca::cuda {

/// CUDA device `device` as the runtime reports it ("cuda:N", its name, total and free memory).
inline DeviceInfo device_info(int device) {
    DeviceInfo d;
    d.device = "cuda:" + std::to_string(device);
    cudaDeviceProp properties{};
    POLYALPACA_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
    d.name = properties.name;
    int current = 0;
    POLYALPACA_CUDA_CHECK(cudaGetDevice(&current));
    POLYALPACA_CUDA_CHECK(cudaSetDevice(device));
    std::size_t free = 0, total = 0;
    POLYALPACA_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    POLYALPACA_CUDA_CHECK(cudaSetDevice(current));
    d.memory_bytes = total, d.free_bytes = free;
    return d;
}

inline DeviceInfo device_info(Context const& ctx) { return device_info(ctx.device()); }

}  // namespace polyalpaca::cuda
