/// @file backend/sizing.hpp
/// @brief Sizing<Target>: a dry-run backend policy. Its ops do no math and touch no memory; its buffers allocate
///        nothing but record their bytes in a Ledger (backend/sizing/ledger.hpp). Running the real layer code on it
///        (a CausalLm, AdamW, train_step, evaluate, KV-cached decoding) gives, allocation by allocation, the memory
///        the target backend would hold: CpuEigen, or Cuda with its GEMM math and attention kernel, whose ops'
///        own memory is modelled from backend/cuda/op_memory.hpp, the functions those ops size their requests by.
///        train/memory_plan.hpp runs it. Only float networks: the targets train in fp32 storage.
#pragma once

#include <cstddef>
#include <cstdint>

#include "polyalpaca/backend/sizing/context.hpp"
#include "polyalpaca/backend/sizing/ops.hpp"

namespace polyalpaca {

/// The dry-run backend policy for Target (sizing::CpuEigenTarget or sizing::CudaTarget): the storage types and
/// LM head chunk of the target, host copies that copy nothing.
template <class Target>
struct Sizing {
    using Context = sizing::Context<Target>;
    static constexpr char const* name = Target::name;
    static constexpr std::int64_t lm_head_chunk_logits = Target::lm_head_chunk_logits;

    template <class T>
    using Buffer = sizing::Buffer<T>;

    template <class T>
    static void upload(Context&, T const*, T*, std::size_t) {}
    template <class T>
    static void download(Context&, T const*, T*, std::size_t) {}
    template <class T>
    static void fill_zero(Context&, T*, std::size_t) {}
    template <class T>
    static void copy(Context&, T const*, T*, std::size_t) {}
    static void synchronize(Context&) {}
};

}  // namespace polyalpaca
