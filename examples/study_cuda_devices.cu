// The GPUs a study runner built with the CUDA backend can see (study/engine_registry.hpp).
#include <polyalpaca/backend/cuda/device_info.cuh>
#include <polyalpaca/study/gpus.hpp>

namespace polyalpaca::study {

std::vector<DeviceInfo> visible_gpus() {
    std::vector<DeviceInfo> out;
    for (int d = 0; d < cuda::device_count(); ++d) out.push_back(cuda::device_info(d));
    return out;
}

}  // namespace polyalpaca::study
