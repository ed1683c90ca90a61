/// @file backend/cpu/bf16_gemm.hpp
/// @brief GemmMath::Bf16 on the CPU: rounding fp32 to bf16, the weights' bf16 working copies, and oneDNN's matmul
///        of bf16 operands accumulated in fp32.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "polyalpaca/backend/cpu/gemm_math.hpp"
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

/// f rounded to bf16, to nearest even (as __float2bfloat16_rn and oneDNN round); a NaN stays a (quiet) NaN.
inline std::uint16_t to_bf16_bits(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if (std::isnan(f)) return std::uint16_t((bits >> 16) | 0x40);
    bits += 0x7fff + ((bits >> 16) & 1);
    return std::uint16_t(bits >> 16);
}

inline constexpr Index round_chunk = Index(1) << 14;
}  // namespace detail

/// dst[i] = src[i] rounded to bf16 (detail::to_bf16_bits), on `threads` threads.
inline void round_to_bf16(int threads, float const* src, std::uint16_t* dst, Index n) {
    [[maybe_unused]] bool const parallel = n >= 4 * detail::round_chunk;
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
    for (Index begin = 0; begin < n; begin += detail::round_chunk) {
        Index const end = std::min(n, begin + detail::round_chunk);
        for (Index i = begin; i < end; ++i) dst[i] = detail::to_bf16_bits(src[i]);
    }
}

/// One side of a product: op(x), a (rows, cols) matrix of bf16 values stored row-major as itself, or, when
/// `transposed`, as its (cols, rows) transpose.
struct Bf16Operand {
    std::uint16_t const* data = nullptr;
    Index rows = 0;
    Index cols = 0;
    bool transposed = false;
};

#ifdef POLYALPACA_ONEDNN
namespace detail {
inline void check_dnnl(dnnl_status_t status, char const* call) {
    if (status != dnnl_success) fail("oneDNN call ", call, " failed (dnnl_status_t ", int(status), ")");
}
}  // namespace detail
#define POLYALPACA_DNNL_CHECK(call) ::polyalpaca::cpu::detail::check_dnnl((call), #call)
#endif

/// What a CPU context needs for GemmMath::Bf16: the bf16 working copies of the weights it multiplies (one per
/// (address, element count), refreshed after a write into the weight: parameters_written) and oneDNN's matmul
/// primitives, one per shape. One per context; not shared between threads.
class Bf16Gemms {
public:
    Bf16Gemms() {
        require(bf16_gemms_runnable(), "GemmMath::Bf16 on the CPU: ",
                bf16_gemms_built ? "oneDNN has no bf16 matmul "
                                   "on this CPU (it needs AVX-512 at least, AVX512_BF16 or AMX to be fast)"
                                 : bf16_gemms_missing());
#ifdef POLYALPACA_ONEDNN
        POLYALPACA_DNNL_CHECK(dnnl_engine_create(&engine_, dnnl_cpu, 0));
        POLYALPACA_DNNL_CHECK(dnnl_stream_create(&stream_, engine_, dnnl_stream_default_flags));
#endif
    }
    ~Bf16Gemms() {
#ifdef POLYALPACA_ONEDNN
        for (auto& [key, m] : matmuls_) {
            for (auto* memory : {m.a, m.b, m.c}) dnnl_memory_destroy(memory);
            dnnl_primitive_destroy(m.primitive);
        }
        if (stream_) dnnl_stream_destroy(stream_);
        if (engine_) dnnl_engine_destroy(engine_);
#endif
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

    /// c = op(a) op(b), or c += op(a) op(b) when `accumulate`; c is (a.rows, b.cols) fp32, row-major, contiguous.
    /// The products of bf16 values are summed in fp32.
    void multiply(Bf16Operand const& a, Bf16Operand const& b, float* c, bool accumulate) {
        require(a.cols == b.rows, "bf16 matmul: op(a) is (", a.rows, ", ", a.cols, ") but op(b) is (", b.rows, ", ",
                b.cols, ")");
#ifdef POLYALPACA_ONEDNN
        auto const key = std::tuple{a.rows, a.cols, b.cols, a.transposed, b.transposed, accumulate};
        auto it = matmuls_.find(key);
        if (it == matmuls_.end()) it = matmuls_.emplace(key, make_matmul(a, b, accumulate)).first;
        auto const& m = it->second;
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.a, const_cast<std::uint16_t*>(a.data)));
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.b, const_cast<std::uint16_t*>(b.data)));
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.c, c));
        dnnl_exec_arg_t const args[] = {{DNNL_ARG_SRC, m.a}, {DNNL_ARG_WEIGHTS, m.b}, {DNNL_ARG_DST, m.c}};
        POLYALPACA_DNNL_CHECK(dnnl_primitive_execute(m.primitive, stream_, 3, args));
        POLYALPACA_DNNL_CHECK(dnnl_stream_wait(stream_));
#else
        (void)c, (void)accumulate;
        fail("GemmMath::Bf16 on the CPU: ", bf16_gemms_missing());
#endif
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

#ifdef POLYALPACA_ONEDNN
    /// One shape's primitive and the memory objects its calls point at their operands.
    struct Matmul {
        dnnl_memory_t a = nullptr, b = nullptr, c = nullptr;
        dnnl_primitive_t primitive = nullptr;
    };
    static dnnl_memory_desc_t describe(Index rows, Index cols, dnnl_data_type_t type, bool transposed) {
        dnnl_memory_desc_t md;
        dnnl_dims_t const dims{rows, cols}, strides{transposed ? 1 : cols, transposed ? rows : 1};
        POLYALPACA_DNNL_CHECK(dnnl_memory_desc_init_by_strides(&md, 2, dims, type, strides));
        return md;
    }
    Matmul make_matmul(Bf16Operand const& a, Bf16Operand const& b, bool accumulate) {
        auto const a_md = describe(a.rows, a.cols, dnnl_bf16, a.transposed);
        auto const b_md = describe(b.rows, b.cols, dnnl_bf16, b.transposed);
        auto const c_md = describe(a.rows, b.cols, dnnl_f32, false);
        dnnl_matmul_desc_t desc;
        POLYALPACA_DNNL_CHECK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, nullptr, &c_md));
        dnnl_primitive_attr_t attr = nullptr;
        dnnl_post_ops_t sum = nullptr;
        POLYALPACA_DNNL_CHECK(dnnl_primitive_attr_create(&attr));
        if (accumulate) {
            POLYALPACA_DNNL_CHECK(dnnl_post_ops_create(&sum));
            POLYALPACA_DNNL_CHECK(dnnl_post_ops_append_sum(sum, 1.0f));
            POLYALPACA_DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, sum));
        }
        dnnl_primitive_desc_t pd = nullptr;
        auto const status = dnnl_primitive_desc_create(&pd, &desc, attr, engine_, nullptr);
        if (sum) dnnl_post_ops_destroy(sum);
        dnnl_primitive_attr_destroy(attr);
        require(status == dnnl_success, "oneDNN has no bf16 matmul for (", a.rows, " x ", a.cols, ") x (", b.rows,
                " x ", b.cols, ") (dnnl_status_t ", int(status), ")");
        Matmul m;
        auto const made = dnnl_primitive_create(&m.primitive, pd);
        dnnl_primitive_desc_destroy(pd);
        POLYALPACA_DNNL_CHECK(made);
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.a, &a_md, engine_, DNNL_MEMORY_NONE));
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.b, &b_md, engine_, DNNL_MEMORY_NONE));
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.c, &c_md, engine_, DNNL_MEMORY_NONE));
        return m;
    }
    using Key = std::tuple<Index, Index, Index, bool, bool, bool>;
    std::map<Key, Matmul> matmuls_;
    dnnl_engine_t engine_ = nullptr;
    dnnl_stream_t stream_ = nullptr;
#endif
};

}  // namespace polyalpaca::cpu
