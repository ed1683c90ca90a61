/// @file backend/cuda/context.cuh
/// @brief The CUDA backend's context (a stream, a cuBLASLt handle and its workspace) and checked CUDA calls.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <utility>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/event_clock.cuh"
#include "polyalpaca/backend/cuda/kernel_choice.hpp"
#include "polyalpaca/backend/cuda/op_memory.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"

namespace polyalpaca::cuda {

namespace detail {
inline void check(cudaError_t status, char const* call, char const* file, int line) {
    if (status != cudaSuccess) {
        fail("CUDA call `", call, "` failed at ", file, ":", line, ": ", cudaGetErrorName(status), " (",
             cudaGetErrorString(status), ")");
    }
}
inline void check(cublasStatus_t status, char const* call, char const* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fail("cuBLASLt call `", call, "` failed at ", file, ":", line, ": ", cublasLtGetStatusName(status), " (",
             cublasLtGetStatusString(status), ")");
    }
}
}  // namespace detail

}  // namespace polyalpaca::cuda

/// Runs a CUDA runtime or cuBLASLt call; on failure throws polyalpaca::Error naming the call, file and line.
#define POLYALPACA_CUDA_CHECK(call) ::polyalpaca::cuda::detail::check((call), #call, __FILE__, __LINE__)

namespace polyalpaca::cuda {

/// Number of CUDA devices; 0, not an error, when there is no driver or no GPU.
inline int device_count() noexcept {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky error so later calls are not blamed for it
        return 0;
    }
    return count;
}

namespace detail {
/// How many times DeviceBuffer has freed device memory in this process. A freed address may come back holding
/// other values, so the bf16 working copies treat every copy as out of date after a free.
inline std::atomic<std::uint64_t>& device_frees() {
    static std::atomic<std::uint64_t> count{0};
    return count;
}

/// The bf16 working copies of weights (parameter memory), one per (address, element count), each refreshed in
/// its own allocation when the weight was written after the copy was made.
struct Bf16Copies {
    struct Copy {
        void* data = nullptr;   // count bf16 values
        bool current = false;   // holds the weight's present values
        bool used = false;      // looked up since the last sweep after a device free
        bool resident = false;  // the weight's only storage (frozen_bf16.cuh): never stale, never swept, not owned
    };
    std::mutex mutex;
    std::map<std::pair<std::uintptr_t, std::size_t>, Copy> copies;
    std::uint64_t frees_seen = 0;
    std::uint64_t parameter_version = 0;
    std::size_t residents = 0;  // copies that are a weight's only storage
};
}  // namespace detail

/// Device memory for the context's ScratchStack, on `device`. A free is counted like DeviceBuffer's, so bf16
/// working copies keyed by a freed address are not trusted again.
struct DeviceMemory {
    int device = 0;
    void* allocate(std::size_t bytes) {
        void* p = nullptr;
        POLYALPACA_CUDA_CHECK(cudaSetDevice(device));
        POLYALPACA_CUDA_CHECK(cudaMalloc(&p, bytes));
        return p;
    }
    /// Waits for the device first: kernels queued before the stack merged its blocks may still read them.
    void deallocate(void* p) noexcept {
        (void)cudaSetDevice(device);
        (void)cudaDeviceSynchronize();
        (void)cudaFree(p);
        detail::device_frees().fetch_add(1);
    }
};

/// A weight's bf16 working copy: `data` holds `count` bf16 values; `stale` when they must be (re)converted.
struct Bf16Slot {
    void* data;
    bool stale;
};

/// What every CUDA op receives first: the device, the stream the op runs on, the cuBLASLt handle and the
/// workspace cuBLASLt may use. Owns all of them (RAII, move-only); ops make the device current themselves.
class Context {
public:
    /// Temporaries of one call at a time (a layer's backward), shared by every layer; ops on the one stream
    /// run in order, so memory given back here is safe to hand out to the next call.
    ScratchStack<DeviceMemory> temporaries;

    using Profile = StepProfile<EventClock>;
    /// When set, layers and train_step time their regions into it (core/step_profile.hpp, make_step_profile).
    Profile* profile = nullptr;

    /// 32 MiB: what cuBLASLt needs for its best Hopper kernels (op_memory.hpp).
    static constexpr std::size_t default_workspace_bytes = cuda::default_workspace_bytes;

    explicit Context(int device = 0, std::size_t workspace_bytes = default_workspace_bytes)
        : temporaries(DeviceMemory{device}), device_(device) {
        int const count = device_count();
        require(device >= 0 && device < count, "CUDA device ", device, " was requested, but ", count,
                " CUDA device(s) are present");
        try {
            POLYALPACA_CUDA_CHECK(cudaSetDevice(device_));
            POLYALPACA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
            POLYALPACA_CUDA_CHECK(cublasLtCreate(&cublaslt_));
            if (workspace_bytes > 0) POLYALPACA_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes));
            workspace_bytes_ = workspace_bytes;
        } catch (...) {
            release();
            throw;
        }
    }
    ~Context() { release(); }

    Context(Context const&) = delete;
    Context& operator=(Context const&) = delete;
    Context(Context&& other) noexcept
        : temporaries(std::move(other.temporaries)),
          profile(std::exchange(other.profile, nullptr)),
          device_(other.device_),
          stream_(std::exchange(other.stream_, nullptr)),
          cublaslt_(std::exchange(other.cublaslt_, nullptr)),
          workspace_(std::exchange(other.workspace_, nullptr)),
          workspace_bytes_(std::exchange(other.workspace_bytes_, 0)),
          gemm_math_(other.gemm_math_),
          attention_kernel_(other.attention_kernel_),
          scratch_(std::exchange(other.scratch_, {})),
          bf16_(std::move(other.bf16_)) {}
    Context& operator=(Context&& other) noexcept {
        if (this != &other) {
            release();
            temporaries = std::move(other.temporaries);
            profile = std::exchange(other.profile, nullptr);
            device_ = other.device_;
            stream_ = std::exchange(other.stream_, nullptr);
            cublaslt_ = std::exchange(other.cublaslt_, nullptr);
            workspace_ = std::exchange(other.workspace_, nullptr);
            workspace_bytes_ = std::exchange(other.workspace_bytes_, 0);
            gemm_math_ = other.gemm_math_;
            attention_kernel_ = other.attention_kernel_;
            scratch_ = std::exchange(other.scratch_, {});
            bf16_ = std::move(other.bf16_);
        }
        return *this;
    }

    int device() const { return device_; }
    GemmMath gemm_math() const { return gemm_math_; }
    void set_gemm_math(GemmMath math) { gemm_math_ = math; }
    /// Auto unless set; cuda::flash_attention_chosen says what runs for a given head_dim.
    AttentionKernel attention_kernel() const { return attention_kernel_; }
    void set_attention_kernel(AttentionKernel kernel) { attention_kernel_ = kernel; }

    /// At least `bytes` of device memory in `slot` (0 .. scratch_slots-1), grown on demand, owned by the context:
    /// memory an op reuses between calls, e.g. token ids uploaded from a host span (op_memory.hpp says which op
    /// takes which slot). Ops on one stream run in order, so reusing a slot in a later op never races an earlier
    /// kernel.
    void* scratch(int slot, std::size_t bytes) {
        require(slot >= 0 && slot < scratch_slots, "CUDA scratch slot ", slot, " is outside [0, ", scratch_slots, ")");
        auto& s = scratch_[std::size_t(slot)];
        if (s.bytes < bytes) {
            if (s.data) POLYALPACA_CUDA_CHECK(cudaFreeAsync(s.data, stream_));
            s = {};
            POLYALPACA_CUDA_CHECK(cudaMallocAsync(&s.data, bytes, stream_));
            s.bytes = bytes;
        }
        return s.data;
    }
    /// Copies a host span into scratch `slot` (queued on the stream) and returns its device address.
    template <class T>
    T* upload_scratch(int slot, std::span<T const> host) {
        auto* device = static_cast<T*>(scratch(slot, std::max<std::size_t>(host.size_bytes(), 1)));
        if (!host.empty())
            POLYALPACA_CUDA_CHECK(
                cudaMemcpyAsync(device, host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream_));
        return device;
    }
    /// Says that `bytes` of device memory at `data` may now hold new parameter values (uploads, zero fills and
    /// optimizer updates call it): bumps parameter_version() and marks the bf16 working copies overlapping that
    /// memory out of date. Thread-safe.
    void parameters_written(void const* data, std::size_t bytes) {
        if (!bf16_ || bytes == 0) return;
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        ++bf16_->parameter_version;
        auto const begin = reinterpret_cast<std::uintptr_t>(data), end = begin + bytes;
        for (auto& [key, copy] : bf16_->copies) {
            bool const overlaps = key.first < end && begin < weight_end(key);
            require(!(overlaps && copy.resident), "a write into a frozen weight kept in bf16 only "
                                                  "(cuda/frozen_bf16.cuh): load the weights before keeping them so");
            if (overlaps) copy.current = false;
        }
    }

    /// Makes `data` (count bf16 values, owned by the caller) the only storage of the weight whose fp32 address is
    /// `key`: GEMMs read it as the weight's bf16 working copy, and nothing may write the weight (key is not device
    /// memory). frozen_bf16.cuh registers a network's frozen matrices so, and forgets them before they are freed.
    void add_resident_weight(float const* key, std::size_t count, void* data) {
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        auto& copy = bf16_->copies[{reinterpret_cast<std::uintptr_t>(key), count}];
        require(copy.data == nullptr, "add_resident_weight: the weight already has a bf16 copy");
        copy = {data, true, true, true};
        ++bf16_->residents;
    }
    void forget_resident_weight(float const* key, std::size_t count) {
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        bf16_->residents -= bf16_->copies.erase({reinterpret_cast<std::uintptr_t>(key), count});
    }
    /// True when the weight of `count` values at p is kept in bf16 only (a lookup, for every weight GEMM).
    bool is_resident_weight(void const* p, std::size_t count) const {
        if (!bf16_) return false;
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        if (bf16_->residents == 0) return false;
        auto const it = bf16_->copies.find({reinterpret_cast<std::uintptr_t>(p), count});
        return it != bf16_->copies.end() && it->second.resident;
    }
    /// True when [p, p + bytes) overlaps a weight kept in bf16 only.
    bool touches_resident_weight(void const* p, std::size_t bytes) const {
        if (!bf16_) return false;
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        if (bf16_->residents == 0) return false;
        auto const begin = reinterpret_cast<std::uintptr_t>(p), end = begin + std::max<std::size_t>(bytes, 1);
        for (auto const& [key, copy] : bf16_->copies)
            if (copy.resident && key.first < end && begin < key.first + key.second * sizeof(float)) return true;
        return false;
    }
    /// How many parameter writes this context has been told of (parameters_written calls).
    std::uint64_t parameter_version() const { return bf16_ ? bf16_->parameter_version : 0; }

    /// The bf16 working copy of the fp32 weight of `count` values at `weight`: allocated on first use and reused
    /// (one copy per weight) when it is refreshed; `stale` says the caller must convert the weight into it now.
    /// A copy is out of date after a parameters_written call overlapping the weight or after any DeviceBuffer
    /// freed memory; a sweep after a free also releases the copies not looked up since the previous sweep.
    Bf16Slot bf16_copy(float const* weight, std::size_t count) {
        require(bf16_ != nullptr, "bf16_copy: this CUDA context was moved from");
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        std::uint64_t const frees = detail::device_frees().load();
        if (frees != bf16_->frees_seen) {
            bf16_->frees_seen = frees;
            for (auto it = bf16_->copies.begin(); it != bf16_->copies.end();) {
                if (it->second.resident) {
                    ++it;
                } else if (!it->second.used) {
                    POLYALPACA_CUDA_CHECK(cudaFreeAsync(it->second.data, stream_));
                    it = bf16_->copies.erase(it);
                } else {
                    it->second.used = false;
                    it->second.current = false;
                    ++it;
                }
            }
        }
        auto const key = std::pair{reinterpret_cast<std::uintptr_t>(weight), count};
        if (bf16_->residents > 0) {
            if (auto const it = bf16_->copies.find(key); it != bf16_->copies.end() && it->second.resident)
                return {it->second.data, false};
            for (auto const& [other, copy] : bf16_->copies)
                require(!copy.resident || weight_end(key) <= other.first || weight_end(other) <= key.first,
                        "bf16_copy: part of a frozen weight kept in bf16 only (cuda/frozen_bf16.cuh) was asked for; "
                        "only the whole weight is kept");
        }
        auto& copy = bf16_->copies[key];
        if (!copy.data)
            POLYALPACA_CUDA_CHECK(cudaMallocAsync(&copy.data, cuda::bf16_weight_copy_bytes(count), stream_));
        bool const stale = !copy.current;
        copy.current = true;
        copy.used = true;
        return {copy.data, stale};
    }
    /// How many bf16 working copies exist, and their bytes.
    std::size_t bf16_copy_count() const {
        if (!bf16_) return 0;
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        return bf16_->copies.size();
    }
    std::size_t bf16_copy_bytes() const {
        if (!bf16_) return 0;
        std::lock_guard<std::mutex> lock(bf16_->mutex);
        std::size_t bytes = 0;
        for (auto const& [key, copy] : bf16_->copies)
            if (!copy.resident) bytes += cuda::bf16_weight_copy_bytes(key.second);
        return bytes;
    }

    cudaStream_t stream() const { return stream_; }
    cublasLtHandle_t cublaslt() const { return cublaslt_; }
    void* workspace() const { return workspace_; }
    std::size_t workspace_bytes() const { return workspace_bytes_; }

    /// Makes this context's device the calling thread's current device.
    void make_current() const { POLYALPACA_CUDA_CHECK(cudaSetDevice(device_)); }
    /// Waits until everything queued on the stream has finished; reports errors from earlier async work.
    void synchronize() const { POLYALPACA_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

private:
    static std::uintptr_t weight_end(std::pair<std::uintptr_t, std::size_t> const& key) {
        return key.first + key.second * sizeof(float);
    }

    void release() noexcept {
        if (bf16_) {
            for (auto& [key, copy] : bf16_->copies)
                if (copy.data && !copy.resident) (void)cudaFree(copy.data);
            bf16_->copies.clear();
        }
        for (auto& s : scratch_) {
            if (s.data) (void)cudaFree(s.data);
            s = {};
        }
        if (workspace_) (void)cudaFree(workspace_);
        if (cublaslt_) (void)cublasLtDestroy(cublaslt_);
        if (stream_) (void)cudaStreamDestroy(stream_);
        workspace_ = nullptr;
        cublaslt_ = nullptr;
        stream_ = nullptr;
        workspace_bytes_ = 0;
    }

    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    cublasLtHandle_t cublaslt_ = nullptr;
    void* workspace_ = nullptr;
    std::size_t workspace_bytes_ = 0;
    GemmMath gemm_math_ = GemmMath::Bf16;
    AttentionKernel attention_kernel_ = AttentionKernel::Auto;
    struct Scratch {
        void* data = nullptr;
        std::size_t bytes = 0;
    };
    std::array<Scratch, scratch_slots> scratch_{};
    std::unique_ptr<detail::Bf16Copies> bf16_ = std::make_unique<detail::Bf16Copies>();
};

/// A profile timed on ctx's stream (set ctx.profile to its address to record).
inline Context::Profile make_step_profile(Context& ctx) {
    return Context::Profile(EventClock(ctx.stream(), ctx.device()));
}

}  // namespace polyalpaca::cuda
