/// @file backend/cuda/frozen_bf16.cuh
/// @brief FrozenInBf16: keeps a network's frozen weight matrices in bf16 only. Under LoRA the base weights never
///        change, and in GemmMath::Bf16 every GEMM reads a weight from its bf16 working copy (Context::bf16_copy),
///        so their fp32 values serve nothing but making those copies: kept in bf16 alone a frozen matrix costs 2
///        bytes a value instead of 6, and every result stays bit for bit the same (the copies hold the same bf16
///        values). Vectors (norms, biases), trainable weights and the one matrix another op reads in fp32 (the
///        embedding table, looked up row by row) stay fp32. The fp32 address of a weight kept so becomes a key in
///        a host reservation that nothing may read or write: a GEMM finds its bf16 storage by it, a write into it
///        or a download from it is an error, and so is any math but Bf16.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "polyalpaca/backend/cuda/bf16.cuh"
#include "polyalpaca/backend/cuda/buffer.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/op_memory.hpp"
#include "polyalpaca/core/parameter.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Host address space reserved with no access and no memory behind it: keys that fault if anything dereferences
/// them, on the host or (through unified addressing) on the device.
class KeySpace {
public:
    KeySpace() = default;
    explicit KeySpace(std::size_t bytes) : bytes_(std::max<std::size_t>(bytes, 1)) {
        void* p = mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        require(p != MAP_FAILED, "FrozenInBf16: cannot reserve ", bytes_, " bytes of address space for weight keys");
        base_ = static_cast<std::byte*>(p);
    }
    ~KeySpace() {
        if (base_) munmap(base_, bytes_);
    }
    KeySpace(KeySpace const&) = delete;
    KeySpace& operator=(KeySpace const&) = delete;

    float* at(std::size_t offset_bytes) const { return reinterpret_cast<float*>(base_ + offset_bytes); }

private:
    std::byte* base_ = nullptr;
    std::size_t bytes_ = 0;
};

}  // namespace detail

class FrozenInBf16 {
public:
    /// Moves every frozen matrix of `store` (a ParameterStore on Cuda, loaded with its final values) but
    /// `keep_fp32` (a parameter name) into bf16. The context must multiply in GemmMath::Bf16.
    template <class Store>
    FrozenInBf16(Context& ctx, Store& store, std::string_view keep_fp32) : ctx_(ctx) {
        require(ctx.gemm_math() == GemmMath::Bf16, "FrozenInBf16: frozen weights kept in bf16 only need "
                "GemmMath::Bf16, but the context is set to ", to_string(ctx.gemm_math()));
        std::size_t const total = frozen_bf16_values(store, keep_fp32);
        keys_ = std::make_unique<detail::KeySpace>(total * sizeof(float));
        arena_ = DeviceBuffer<std::uint16_t>(std::max<std::size_t>(total, 1));
        ctx.make_current();
        move_frozen_to_bf16(ctx, store, keep_fp32, [&](Parameter<float>& p, std::size_t at) {
            auto const n = std::size_t(p.size());
            void* bf16 = arena_.data() + at;
            detail::to_bf16(ctx, p.value, Index(n), bf16);
            p.value = keys_->at(at * sizeof(float));
            ctx.add_resident_weight(p.value, n, bf16);
            weights_.emplace_back(p.value, n);
            values_ += n;
        });
    }
    ~FrozenInBf16() {
        for (auto const& [key, n] : weights_) ctx_.forget_resident_weight(key, n);
    }
    FrozenInBf16(FrozenInBf16 const&) = delete;
    FrozenInBf16& operator=(FrozenInBf16 const&) = delete;

    /// Weight values kept in bf16 only, and the device bytes they take.
    std::size_t values() const { return values_; }
    std::size_t bytes() const { return arena_.size() * sizeof(std::uint16_t); }

private:
    Context& ctx_;
    std::unique_ptr<detail::KeySpace> keys_;
    DeviceBuffer<std::uint16_t> arena_;
    std::vector<std::pair<float const*, std::size_t>> weights_;
    std::size_t values_ = 0;
};

}  // namespace polyalpaca::cuda
