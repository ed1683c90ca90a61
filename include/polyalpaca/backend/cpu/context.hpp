/// @file backend/cpu/context.hpp
/// @brief The CPU backend's context: what every CPU op receives first, so overloads pick the backend.
#pragma once

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/blas.hpp"

namespace polyalpaca::cpu {

/// Threads Eigen (and OpenMP loops in the ops) may use. Ops are free functions in polyalpaca::cpu
/// taking `Context&` first; layers call them unqualified and argument-dependent lookup finds them.
struct Context {
    Context() : Context(Eigen::nbThreads()) {}
    explicit Context(int thread_count) : threads(thread_count) { warn_once_about_blas_kernel(); }

    int threads;
};

}  // namespace polyalpaca::cpu
