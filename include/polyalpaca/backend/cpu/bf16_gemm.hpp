/// @file backend/cpu/bf16_gemm.hpp
/// @brief GemmMath::Bf16 on the CPU: rounding fp32 to bf16, the weights' bf16 working copies, and oneDNN's matmul
///        of bf16 operands accumulated in fp32.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "polyalpaca/backend/cpu/gemm_math.hpp"
#include "polyalpaca/backend/cpu/onednn_matmul.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {
/// How many times a CpuEigen buffer was freed in this process. A freed address may come back holding another
/// weight, so the bf16 working copies are all treated as out of date after a free (as the CUDA backend's are).
inline std::atomic<std::uint64_t>& host_buffer_frees() {
    static std::atomic<std::uint64_t> count{0};
    return count;
}

/// f rounded to bf16, to nearest even (as __float2bfloat16_rn and oneDNN round); a NaN stays a (quiet) NaN. Without
/// a branch, so that loops over it vectorise (4x the rate of the branching form).
inline std::uint16_t to_bf16_bits(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    std::uint32_t const rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    std::uint32_t const quiet_nan = (bits >> 16) | 0x40u;
    return std::uint16_t((bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

inline constexpr Index round_chunk = Index(1) << 14;
}  // namespace detail

/// dst[i] = src[i] rounded to bf16 (detail::to_bf16_bits), on `threads` threads.
inline void round_to_bf16(int threads, float const* src, std::uint16_t* dst, Index n) {
    [[maybe_unused]] bool const parallel = n >= 4 * detail::round_chunk;
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
    for (Index begin = 0; begin < n; begin += detail::round_chunk) {
        Index const end = std::min(n, begin + detail::round_chunk);
#pragma omp simd
        for (Index i = begin; i < end; ++i) dst[i] = detail::to_bf16_bits(src[i]);
    }
}

/// One side of a product whose data are bf16 values (MatmulOperand, onednn_matmul.hpp).
using Bf16Operand = MatmulOperand;

/// What a CPU context needs for GemmMath::Bf16: the bf16 working copies of the weights it multiplies (one per
/// (address, element count), refreshed after a write into the weight: parameters_written) and oneDNN's bf16 matmuls.
/// One per context; not shared between threads.
class Bf16Gemms {
public:
    Bf16Gemms() {
        require(bf16_gemms_runnable(), "GemmMath::Bf16 on the CPU: ",
                bf16_gemms_built ? "oneDNN has no bf16 matmul "
                                   "on this CPU (it needs AVX-512 at least, AVX512_BF16 or AMX to be fast)"
                                 : bf16_gemms_missing());
    }
    Bf16Gemms(Bf16Gemms const&) = delete;
    Bf16Gemms& operator=(Bf16Gemms const&) = delete;

    /// The bf16 working copy of the fp32 weight of `count` values at w, converted now when it was written since
    /// the last conversion (or when any CpuEigen buffer was freed since: its address may hold another weight).
    std::uint16_t const* weight(int threads, float const* w, std::size_t count) {
        std::uint64_t const frees = detail::host_buffer_frees().load();
        if (frees != frees_seen_) {
            frees_seen_ = frees;
            for (auto it = copies_.begin(); it != copies_.end();) {
                if (!it->second.used) {
                    it = copies_.erase(it);
                } else {
                    it->second.used = it->second.current = false;
                    ++it;
                }
            }
        }
        auto& copy = copies_[{reinterpret_cast<std::uintptr_t>(w), count}];
        if (!copy.current) {
            copy.values.resize(count);
            round_to_bf16(threads, w, copy.values.data(), Index(count));
            copy.current = true;
            ++conversions_;
        }
        copy.used = true;
        return copy.values.data();
    }

    /// Says that [data, data + bytes) may hold new values: the working copies overlapping it are out of date.
    void parameters_written(void const* data, std::size_t bytes) {
        auto const begin = reinterpret_cast<std::uintptr_t>(data), end = begin + bytes;
        for (auto& [key, copy] : copies_)
            if (key.first < end && begin < key.first + key.second * sizeof(float)) copy.current = false;
    }

    /// c = op(a) op(b), or c += op(a) op(b) when `accumulate`; c is (a.rows, b.cols) fp32, row-major, contiguous
    /// unless given as a strided MatmulResult (batches too: OneDnnMatmuls::multiply). The products of bf16 values
    /// are summed in fp32.
    template <class Result>
    void multiply(Bf16Operand const& a, Bf16Operand const& b, Result const& c, bool accumulate) {
        matmuls_.multiply(OneDnnMatmuls::Operands::bf16, a, b, c, accumulate);
    }

    /// How many working copies exist, their bytes, and how many conversions into them ran so far.
    std::size_t copy_count() const { return copies_.size(); }
    std::size_t copy_bytes() const {
        std::size_t bytes = 0;
        for (auto const& [key, copy] : copies_) bytes += copy.values.size() * sizeof(std::uint16_t);
        return bytes;
    }
    std::uint64_t conversions() const { return conversions_; }

private:
    struct Copy {
        std::vector<std::uint16_t> values;
        bool current = false;  // holds the weight's present values
        bool used = false;     // looked up since the last sweep after a free
    };
    std::map<std::pair<std::uintptr_t, std::size_t>, Copy> copies_;
    std::uint64_t frees_seen_ = detail::host_buffer_frees().load();
    std::uint64_t conversions_ = 0;

    OneDnnMatmuls matmuls_;
};

}  // namespace polyalpaca::cpu
