/// @file backend/cpu/context.hpp
/// @brief The CPU backend's context: what every CPU op receives first, so overloads pick the backend.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "polyalpaca/backend/cpu/bf16_gemm.hpp"
#include "polyalpaca/backend/cpu/blas.hpp"
#include "polyalpaca/backend/cpu/gemm_math.hpp"
#include "polyalpaca/backend/cpu/onednn_matmul.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"

namespace polyalpaca::cpu {

/// Host memory for ScratchStack, on its alignment.
struct HostMemory {
    void* allocate(std::size_t bytes) {
        std::size_t const a = ScratchStack<HostMemory>::alignment;
        void* p = std::aligned_alloc(a, (bytes + a - 1) / a * a);
        if (!p) throw std::bad_alloc();
        return p;
    }
    void deallocate(void* p) noexcept { std::free(p); }
};

/// Threads Eigen (and OpenMP loops in the ops) may use. Ops are free functions in polyalpaca::cpu
/// taking `Context&` first; layers call them unqualified and argument-dependent lookup finds them.
struct Context {
    Context() : Context(Eigen::nbThreads()) {}
    explicit Context(int thread_count) : threads(thread_count) { warn_once_about_blas_kernel(); }

    int threads;
    /// Temporaries of one call at a time (a layer's backward), shared by every layer.
    ScratchStack<HostMemory> temporaries;

    using Profile = StepProfile<HostClock>;
    /// When set, layers and train_step time their regions into it (core/step_profile.hpp).
    Profile* profile = nullptr;

    /// How the linear layers, the LM head and attention multiply: fp32 unless set (gemm_math.hpp). In Bf16 the
    /// weights are multiplied from bf16 working copies, which every write into a buffer through CpuEigen (upload,
    /// copy, fill_zero), the optimizer ops or a collective marks out of date (parameters_written); code writing
    /// weights through raw pointers in Bf16 must call it too.
    GemmMath gemm_math() const { return gemm_math_; }
    void set_gemm_math(GemmMath math) {
        if (math == GemmMath::Bf16 && !bf16_) bf16_ = std::make_unique<Bf16Gemms>();
        gemm_math_ = math;
    }
    /// Says that `bytes` at `data` may now hold new values (a no-op until Bf16 was first set).
    void parameters_written(void const* data, std::size_t bytes) {
        if (bf16_) bf16_->parameters_written(data, bytes);
    }
    /// The working copies and matmuls of GemmMath::Bf16 (set_gemm_math(Bf16) made them).
    Bf16Gemms& bf16_gemms() {
        require(bf16_ != nullptr, "bf16_gemms: this CPU context was never set to GemmMath::Bf16");
        return *bf16_;
    }
    /// oneDNN's fp32 matmuls of the linear layers (fp32_gemms_by_onednn), made at first use.
    OneDnnMatmuls& fp32_matmuls() {
        if (!fp32_) fp32_ = std::make_unique<OneDnnMatmuls>();
        return *fp32_;
    }

private:
    GemmMath gemm_math_ = GemmMath::Fp32;
    std::unique_ptr<Bf16Gemms> bf16_;
    std::unique_ptr<OneDnnMatmuls> fp32_;
};

/// Makes this process compute on `threads` threads from now on: the ops' OpenMP loops, Eigen's GEMMs and
/// OpenBLAS's. A Context made afterwards takes the count; one made before keeps its own.
inline void set_cpu_threads(int threads) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    Eigen::setNbThreads(threads);
    set_blas_threads(threads);
}

/// A profile for this context's work (set ctx.profile to its address to record).
inline Context::Profile make_step_profile(Context&) { return Context::Profile{}; }

}  // namespace polyalpaca::cpu
