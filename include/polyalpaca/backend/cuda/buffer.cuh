/// @file backend/cuda/buffer.cuh
/// @brief Owning device memory (RAII, move-only) and host <-> device copies on a Context's stream.
#pragma once

#include <cstddef>
#include <utility>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"

namespace polyalpaca::cuda {

/// `size` elements of T in device memory; contents start undefined (use fill_zero).
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t size) : size_(size) {
        if (size_ > 0) POLYALPACA_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), size_ * sizeof(T)));
    }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    T* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    /// Frees the memory and counts the free (see detail::device_frees: bf16 working copies keyed by this address
    /// must not outlive it).
    void release() noexcept {
        if (!data_) return;
        (void)cudaFree(data_);
        detail::device_frees().fetch_add(1);
        data_ = nullptr;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Copies n elements host -> device; returns when the copy is done. Tells ctx the memory was written
/// (Context::parameters_written), as it may hold weights.
template <class T>
void upload(Context& ctx, T const* host, T* device, std::size_t n) {
    ctx.parameters_written(device, n * sizeof(T));
    POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(device, host, n * sizeof(T), cudaMemcpyHostToDevice, ctx.stream()));
    ctx.synchronize();
}
/// Copies n elements device -> host; returns when the copy is done (so it also reports earlier async errors).
template <class T>
void download(Context& ctx, T const* device, T* host, std::size_t n) {
    POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(host, device, n * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
}
/// Copies n elements device -> device, queued on the stream; tells ctx the destination was written, like upload.
template <class T>
void copy(Context& ctx, T const* src, T* dst, std::size_t n) {
    ctx.parameters_written(dst, n * sizeof(T));
    POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, ctx.stream()));
}
/// Sets n elements to zero, queued on the stream; tells ctx the memory was written, like upload.
template <class T>
void fill_zero(Context& ctx, T* device, std::size_t n) {
    ctx.parameters_written(device, n * sizeof(T));
    POLYALPACA_CUDA_CHECK(cudaMemsetAsync(device, 0, n * sizeof(T), ctx.stream()));
}

}  // namespace polyalpaca::cuda
