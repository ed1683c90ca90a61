/// @file backend/sizing/frozen_bf16.hpp
/// @brief The dry-run counterpart of cuda::FrozenInBf16 (backend/cuda/frozen_bf16.cuh): the same frozen matrices
///        leave the fp32 arena for a bf16 buffer, their keys take no memory, and a GEMM reading one makes no working
///        copy; so a plan holds what a network kept so holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/backend/cuda/op_memory.hpp"
#include "polyalpaca/backend/sizing/context.hpp"
#include "polyalpaca/core/parameter.hpp"

namespace polyalpaca::sizing {

template <class Target>
class FrozenInBf16 {
    static_assert(Target::cuda, "frozen weights are kept in bf16 only on the CUDA backend");

public:
    template <class Store>
    FrozenInBf16(Context<Target>& ctx, Store& store, std::string_view keep_fp32) : ctx_(ctx) {
        require(ctx.gemm_math() == cuda::GemmMath::Bf16, "FrozenInBf16: frozen weights kept in bf16 only need "
                "GemmMath::Bf16, but the plan's context is set to ", cuda::to_string(ctx.gemm_math()));
        std::size_t const total = cuda::frozen_bf16_values(store, keep_fp32);
        auto* keys = static_cast<std::byte*>(ctx.ledger().reserve_addresses(total * sizeof(float)));
        arena_ = Buffer<std::uint16_t>(total);
        cuda::move_frozen_to_bf16(ctx, store, keep_fp32, [&](Parameter<float>& p, std::size_t at) {
            auto const n = std::size_t(p.size());
            p.value = reinterpret_cast<float*>(keys + at * sizeof(float));
            ctx.add_resident_weight(p.value, n);
            weights_.emplace_back(p.value, n);
            values_ += n;
        });
    }
    ~FrozenInBf16() {
        for (auto const& [key, n] : weights_) ctx_.forget_resident_weight(key, n);
    }
    FrozenInBf16(FrozenInBf16 const&) = delete;
    FrozenInBf16& operator=(FrozenInBf16 const&) = delete;

    std::size_t values() const { return values_; }
    std::size_t bytes() const { return arena_.size() * sizeof(std::uint16_t); }

private:
    Context<Target>& ctx_;
    Buffer<std::uint16_t> arena_;
    std::vector<std::pair<float const*, std::size_t>> weights_;
    std::size_t values_ = 0;
};

}  // namespace polyalpaca::sizing
