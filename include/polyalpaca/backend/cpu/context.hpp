/// @file backend/cpu/context.hpp
/// @brief The CPU backend's context: what every CPU op receives first, so overloads pick the backend.
#pragma once

#include <cstdlib>
#include <new>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "polyalpaca/backend/cpu/blas.hpp"
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
