/// @file backend/cpu/context.hpp
/// @brief The CPU backend's context: what every CPU op receives first, so overloads pick the backend.
#pragma once

#include <Eigen/Core>

namespace polyalpaca::cpu {

/// Threads Eigen (and OpenMP loops in the ops) may use. Ops are free functions in polyalpaca::cpu
/// taking `Context&` first; layers call them unqualified and argument-dependent lookup finds them.
struct Context {
    int threads = Eigen::nbThreads();
};

}  // namespace polyalpaca::cpu
