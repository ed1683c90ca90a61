/// @file study/gpus.hpp
/// @brief The GPUs a study runner can use: whether it was built with the CUDA backend, and the GPUs the process
///        sees. Defined by the runner's build (cmake/PolyalpacaStudy.cmake: examples/study_cuda_devices.cu with
///        the CUDA backend, the generated engine table without).
#pragma once

#include <vector>

#include "polyalpaca/backend/device_info.hpp"

namespace polyalpaca::study {

/// True when this runner has engines on the CUDA backend.
bool built_with_cuda();

/// The CUDA GPUs this process can see (none without the CUDA backend or a driver), as the runtime describes them.
std::vector<DeviceInfo> visible_gpus();

}  // namespace polyalpaca::study
