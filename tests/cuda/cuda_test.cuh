/// @file tests/cuda/cuda_test.cuh
/// @brief What every CUDA parity test shares: skip without a GPU (exit 77), checks that count failures, device
/// round trips and the relative error max|a - b| / max|b| used by docs/tolerances.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "polyalpaca/backend/cuda/buffer.cuh"
#include "polyalpaca/core/error.hpp"

#include "../support/relative_error.hpp"

namespace polyalpaca::cuda_test {

inline int failures = 0;

inline void expect(bool ok, std::string const& what) {
    if (!ok) {
        ++failures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

/// True (after printing why) when no GPU is present; main() then returns 77, which CTest reports as skipped.
inline bool no_gpu(char const* test) {
    if (cuda::device_count() > 0) return false;
    std::printf("SKIPPED: %s needs an NVIDIA GPU and cudaGetDeviceCount found none\n", test);
    return true;
}

using polyalpaca::test::relative_error;

/// Checks relative_error(got, want) <= tolerance and prints the measured error either way.
inline void expect_close(std::vector<float> const& got, std::vector<float> const& want, double tolerance,
                         std::string const& what) {
    double const error = relative_error(got, want);
    std::printf("  %-48s relative error %.3e (tolerance %.1e)\n", what.c_str(), error, tolerance);
    expect(error <= tolerance, what + ": relative error " + std::to_string(error) + " > " + std::to_string(tolerance));
}

/// A device copy of a host vector, and the host copy of n device elements.
template <class T>
cuda::DeviceBuffer<T> to_device(cuda::Context& ctx, std::vector<T> const& host) {
    cuda::DeviceBuffer<T> device(host.size());
    if (!host.empty()) cuda::upload(ctx, host.data(), device.data(), host.size());
    return device;
}
template <class T>
std::vector<T> to_host(cuda::Context& ctx, T const* device, std::size_t n) {
    std::vector<T> host(n);
    if (n > 0) cuda::download(ctx, device, host.data(), n);
    return host;
}

/// Checks that f throws polyalpaca::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, std::string const& needle, std::string const& what) {
    try {
        f();
    } catch (Error const& e) {
        expect(std::string(e.what()).find(needle) != std::string::npos,
               what + ": message lacks '" + needle + "': " + e.what());
        return;
    }
    expect(false, what + ": no polyalpaca::Error was thrown");
}

/// Prints the verdict and returns main()'s exit code.
inline int finish(char const* test) {
    if (failures > 0) {
        std::printf("%s: %d check(s) failed\n", test, failures);
        return 1;
    }
    std::printf("%s: all checks passed\n", test);
    return 0;
}

}  // namespace polyalpaca::cuda_test
