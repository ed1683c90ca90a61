/// @file backend/cpu_eigen.hpp
/// @brief The CpuEigen backend policy: host memory, Eigen math, ops in polyalpaca::cpu.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/activation.hpp"
#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cpu/dropout.hpp"
#include "polyalpaca/backend/cpu/embedding.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/backend/cpu/loss.hpp"
#include "polyalpaca/backend/cpu/norm.hpp"
#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/backend/cpu/qkv.hpp"
#include "polyalpaca/backend/cpu/rows.hpp"
#include "polyalpaca/backend/cpu/rope.hpp"

namespace polyalpaca {

/// Backend policy for the CPU. Layers use only what is named here and the ops found through Context.
struct CpuEigen {
    using Context = cpu::Context;
    static constexpr char const* name = "cpu-eigen";

    /// Owning storage for T; zero-initialised.
    template <class T>
    using Buffer = std::vector<T>;

    template <class T>
    static void upload(Context&, T const* host, T* dst, std::size_t n) { std::copy(host, host + n, dst); }
    template <class T>
    static void download(Context&, T const* src, T* host, std::size_t n) { std::copy(src, src + n, host); }
    template <class T>
    static void fill_zero(Context&, T* dst, std::size_t n) { std::fill(dst, dst + n, T(0)); }
    static void synchronize(Context&) {}
};

}  // namespace polyalpaca
