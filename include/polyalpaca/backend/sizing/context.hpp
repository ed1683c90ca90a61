/// @file backend/sizing/context.hpp
/// @brief The dry-run backend's targets and its Context (backend/sizing.hpp): the ledger every allocation of a dry
///        run is recorded in, and what the target backend's own context holds (for Cuda: the cuBLASLt workspace,
///        scratch slots grown to their largest request; in either's Bf16 GEMM math, one bf16 working copy per
///        weight).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/backend/cuda/kernel_choice.hpp"
#include "polyalpaca/backend/cuda/op_memory.hpp"
#include "polyalpaca/backend/sizing/ledger.hpp"
#include "polyalpaca/core/scratch_stack.hpp"

namespace polyalpaca::sizing {

/// The backend being sized. `cuda` turns on what only the Cuda backend holds and does: scratch slots, bf16
/// working copies, the cuBLASLt workspace, the fused LM head chunk and GELU linear ops, the flash kernels' state.
struct CpuEigenTarget {
    static constexpr bool cuda = false;
    static constexpr char const* name = "cpu";
    static constexpr std::int64_t lm_head_chunk_logits = CpuEigen::lm_head_chunk_logits;
};
struct CudaTarget {
    static constexpr bool cuda = true;
    static constexpr char const* name = "cuda";
    static constexpr std::int64_t lm_head_chunk_logits = cuda::lm_head_chunk_logits;
};

/// What every sizing op receives first. Owns the ledger, which Buffers made on this thread record into while the
/// context lives; mirrors what the target's context holds itself (for Cuda: the workspace, scratch slots grown to
/// their largest request, one bf16 working copy per (weight address, count)). Not movable: buffers find it
/// through the thread's active ledger.
template <class Target>
class Context {
    std::shared_ptr<Ledger> ledger_ = std::make_shared<Ledger>();
    std::shared_ptr<Ledger> previous_;

public:
    Context() : previous_(std::exchange(active_ledger(), ledger_)), temporaries(LedgerMemory{ledger_}) {
        if constexpr (Target::cuda) workspace_ = ledger_->allocate(cuda::default_workspace_bytes, Pool::Workspace);
    }
    ~Context() {
        for (auto& s : slots_)
            if (s.data) ledger_->release(s.data);
        for (auto& [key, copy] : bf16_copies_) ledger_->release(copy);
        if (workspace_) ledger_->release(workspace_);
        active_ledger() = std::move(previous_);
    }
    Context(Context const&) = delete;
    Context& operator=(Context const&) = delete;

    /// Temporaries of one call at a time, as every backend's context has (core/scratch_stack.hpp).
    ScratchStack<LedgerMemory> temporaries;

    Ledger& ledger() const { return *ledger_; }

    cuda::GemmMath gemm_math() const requires Target::cuda { return gemm_math_; }
    void set_gemm_math(cuda::GemmMath math) requires Target::cuda { gemm_math_ = math; }
    cpu::GemmMath gemm_math() const requires(!Target::cuda) { return cpu_gemm_math_; }
    void set_gemm_math(cpu::GemmMath math) requires(!Target::cuda) { cpu_gemm_math_ = math; }
    cuda::AttentionKernel attention_kernel() const requires Target::cuda { return attention_kernel_; }
    void set_attention_kernel(cuda::AttentionKernel kernel) requires Target::cuda { attention_kernel_ = kernel; }
    /// True when the target's GEMMs read bf16 operands (either backend in its GemmMath::Bf16).
    bool bf16_gemms() const {
        if constexpr (Target::cuda) return gemm_math_ == cuda::GemmMath::Bf16;
        else return cpu_gemm_math_ == cpu::GemmMath::Bf16;
    }

    /// cuda::Context::scratch: `slot` grows to `bytes` unless it holds that much already. The smaller block goes
    /// back to the stream-ordered pool, which cannot give it to the larger request, so both are held at that moment.
    void scratch(int slot, std::size_t bytes) {
        require(slot >= 0 && slot < cuda::scratch_slots, "sizing: scratch slot ", slot, " is outside [0, ",
                cuda::scratch_slots, ")");
        auto& s = slots_[std::size_t(slot)];
        if (s.bytes >= bytes) return;
        void* const grown = ledger_->allocate(bytes, Pool::OpScratch);
        if (s.data) ledger_->release(s.data);
        s = {grown, bytes};
    }
    /// cuda::Context::bf16_copy (and cpu::Bf16Gemms::weight): the working copy of the weight of `count` values at
    /// `weight`, made on first use. Held for good: in a steady training loop no buffer is freed, so none is swept.
    void bf16_copy(float const* weight, std::size_t count) {
        auto const key = std::pair{reinterpret_cast<std::uintptr_t>(weight), count};
        if (bf16_copies_.count(key) || residents_.count(key)) return;
        bf16_copies_.emplace(key, ledger_->allocate(cuda::bf16_weight_copy_bytes(count), Pool::Bf16Copies));
        bf16_copy_bytes_ += cuda::bf16_weight_copy_bytes(count);
    }
    /// cuda::Context::add_resident_weight / forget_resident_weight: a weight whose bf16 storage is its own (held
    /// by FrozenInBf16), which a GEMM reads without making a working copy.
    void add_resident_weight(float const* key, std::size_t count) {
        residents_.insert({reinterpret_cast<std::uintptr_t>(key), count});
    }
    void forget_resident_weight(float const* key, std::size_t count) {
        residents_.erase({reinterpret_cast<std::uintptr_t>(key), count});
    }
    /// Host memory an op allocates and frees within one call (the CPU's staging buffers).
    void transient(std::size_t bytes) { ledger_->release(ledger_->allocate(bytes, Pool::OpScratch)); }

    std::size_t scratch_bytes() const {
        std::size_t total = 0;
        for (auto const& s : slots_) total += s.bytes;
        return total;
    }
    std::size_t bf16_copy_count() const { return bf16_copies_.size(); }
    std::size_t bf16_copy_bytes() const { return bf16_copy_bytes_; }
    std::size_t workspace_bytes() const { return workspace_ ? cuda::default_workspace_bytes : 0; }

private:
    struct Slot {
        void* data = nullptr;
        std::size_t bytes = 0;
    };
    cuda::GemmMath gemm_math_ = cuda::GemmMath::Bf16;
    cpu::GemmMath cpu_gemm_math_ = cpu::GemmMath::Fp32;
    cuda::AttentionKernel attention_kernel_ = cuda::AttentionKernel::Auto;
    void* workspace_ = nullptr;
    std::array<Slot, cuda::scratch_slots> slots_{};
    std::map<std::pair<std::uintptr_t, std::size_t>, void*> bf16_copies_;
    std::set<std::pair<std::uintptr_t, std::size_t>> residents_;
    std::size_t bf16_copy_bytes_ = 0;
};

}  // namespace polyalpaca::sizing
