/// @file backend/cuda/event_clock.cuh
/// @brief The clock of a StepProfile on a CUDA stream (core/step_profile.hpp): each stamp records an event, so
/// intervals are device time between the points where the host queued the stamps.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include <cuda_runtime.h>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::cuda {

/// Events are created on first use and reused by later profiles of the same clock. Move-only.
class EventClock {
public:
    EventClock(cudaStream_t stream, int device) : stream_(stream), device_(device) {}
    ~EventClock() {
        if (events_.empty()) return;
        (void)cudaSetDevice(device_);
        for (auto event : events_) (void)cudaEventDestroy(event);
    }
    EventClock(EventClock&& other) noexcept
        : stream_(other.stream_), device_(other.device_), events_(std::exchange(other.events_, {})),
          used_(std::exchange(other.used_, 0)) {}
    EventClock& operator=(EventClock&&) = delete;
    EventClock(EventClock const&) = delete;
    EventClock& operator=(EventClock const&) = delete;

    void stamp() {
        if (used_ == events_.size()) {
            cudaEvent_t event = nullptr;
            check(cudaSetDevice(device_), "cudaSetDevice");
            check(cudaEventCreate(&event), "cudaEventCreate");
            events_.push_back(event);
        }
        check(cudaEventRecord(events_[used_], stream_), "cudaEventRecord");
        ++used_;
    }

    /// Waits for the last stamp; the milliseconds between consecutive stamps; forgets the stamps.
    std::vector<double> intervals_ms() {
        std::vector<double> out;
        if (used_ > 0) check(cudaEventSynchronize(events_[used_ - 1]), "cudaEventSynchronize");
        for (std::size_t i = 1; i < used_; ++i) {
            float ms = 0;
            check(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]), "cudaEventElapsedTime");
            out.push_back(double(ms));
        }
        used_ = 0;
        return out;
    }

private:
    static void check(cudaError_t status, char const* call) {
        if (status != cudaSuccess)
            fail("step profile: ", call, " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
    }

    cudaStream_t stream_;
    int device_;
    std::vector<cudaEvent_t> events_;
    std::size_t used_ = 0;
};

}  // namespace polyalpaca::cuda
