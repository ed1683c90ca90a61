/// @file backend/cpu/onednn_matmul.hpp
/// @brief oneDNN's matmul on the CPU: c (+)= op(a) op(b) with fp32 or bf16 operands and an fp32 result, one primitive
///        per operand type and shape, made at first use and kept (its JIT kernels are what make products fast).
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "polyalpaca/backend/cpu/gemm_math.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// True when this build multiplies the fp32 products of its linear layers with oneDNN's matmul (POLYALPACA_ONEDNN)
/// rather than Eigen's products over OpenBLAS (backend/cpu/linear.hpp, onednn_fp32_product).
inline constexpr bool fp32_gemms_by_onednn = bf16_gemms_built;

/// One side of a product: op(x), a (rows, cols) matrix stored row-major as itself or, when `transposed`, as its
/// (cols, rows) transpose; or a batch of `batch` such matrices, `batch_stride` elements apart. `row_stride` is the
/// distance between the stored rows (0: they are adjacent), so a head's slice of an activation is an operand too.
struct MatmulOperand {
    void const* data = nullptr;
    Index rows = 0;
    Index cols = 0;
    bool transposed = false;
    Index row_stride = 0;
    Index batch = 1;
    Index batch_stride = 0;

    auto operator<=>(MatmulOperand const&) const = default;
};

/// Where a product's fp32 result goes: (rows, cols) matrices stored row-major, rows `row_stride` elements apart
/// (0: adjacent), a batch's matrices `batch_stride` apart.
struct MatmulResult {
    float* data = nullptr;
    Index row_stride = 0;
    Index batch_stride = 0;
};

#ifdef POLYALPACA_ONEDNN
namespace detail {
inline void check_dnnl(dnnl_status_t status, char const* call) {
    if (status != dnnl_success) fail("oneDNN call ", call, " failed (dnnl_status_t ", int(status), ")");
}
}  // namespace detail
#define POLYALPACA_DNNL_CHECK(call) ::polyalpaca::cpu::detail::check_dnnl((call), #call)
#endif

/// oneDNN's engine, stream and matmul primitives (one per operand type, shape, layout and accumulation). One per
/// context; not shared between threads. oneDNN runs on the OpenMP threads the process allows (set_cpu_threads). In a
/// build without oneDNN, multiply is an error.
class OneDnnMatmuls {
public:
    enum class Operands { f32, bf16 };

    OneDnnMatmuls() {
#ifdef POLYALPACA_ONEDNN
        // These objects keep their primitives; oneDNN's own process-wide cache (1,024 by default) would keep a
        // second copy of each, tens of MiB for a run over many sequence lengths.
        static bool const uncached = dnnl_set_primitive_cache_capacity(0) == dnnl_success;
        (void)uncached;
        POLYALPACA_DNNL_CHECK(dnnl_engine_create(&engine_, dnnl_cpu, 0));
        POLYALPACA_DNNL_CHECK(dnnl_stream_create(&stream_, engine_, dnnl_stream_default_flags));
#endif
    }
    ~OneDnnMatmuls() {
#ifdef POLYALPACA_ONEDNN
        clear();
        if (stream_) dnnl_stream_destroy(stream_);
        if (engine_) dnnl_engine_destroy(engine_);
#endif
    }
    OneDnnMatmuls(OneDnnMatmuls const&) = delete;
    OneDnnMatmuls& operator=(OneDnnMatmuls const&) = delete;

    /// c = op(a) op(b), or c += op(a) op(b) when `accumulate`; a and b hold `operands`, c is (a.rows, b.cols) fp32,
    /// row-major, contiguous. Products are summed in fp32.
    void multiply(Operands operands, MatmulOperand const& a, MatmulOperand const& b, float* c, bool accumulate) {
        multiply(operands, a, b, MatmulResult{c}, accumulate);
    }

    /// The same for batches (a and b of the same `batch`: c's matrix i = op(a_i) op(b_i)) and for strided results.
    void multiply(Operands operands, MatmulOperand const& a, MatmulOperand const& b, MatmulResult const& c,
                  bool accumulate) {
        require(a.cols == b.rows, "matmul: op(a) is (", a.rows, ", ", a.cols, ") but op(b) is (", b.rows, ", ", b.cols,
                ")");
        require(a.batch == b.batch && a.batch >= 1, "matmul: a batch of ", a.batch, " times a batch of ", b.batch);
#ifdef POLYALPACA_ONEDNN
        // The data pointers are not part of a shape: the same primitive serves every call of it.
        auto const shape_of = [](MatmulOperand x) {
            x.data = nullptr;
            return x;
        };
        auto const key = Key{operands, shape_of(a), shape_of(b), c.row_stride, c.batch_stride, accumulate};
        auto it = matmuls_.find(key);
        if (it == matmuls_.end()) {
            if (matmuls_.size() >= max_primitives) clear();  // sequences of many lengths: start afresh
            it = matmuls_.emplace(key, make_matmul(operands, a, b, c, accumulate)).first;
        }
        auto const& m = it->second;
        if (scratchpad_.size() < m.scratchpad_bytes + scratchpad_alignment)
            scratchpad_.resize(m.scratchpad_bytes + scratchpad_alignment);
        void* scratchpad = scratchpad_.data();
        std::size_t room = scratchpad_.size();
        std::align(scratchpad_alignment, m.scratchpad_bytes, scratchpad, room);
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.a, const_cast<void*>(a.data)));
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.b, const_cast<void*>(b.data)));
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.c, c.data));
        POLYALPACA_DNNL_CHECK(dnnl_memory_set_data_handle(m.scratchpad, scratchpad));
        dnnl_exec_arg_t const args[] = {{DNNL_ARG_SRC, m.a},
                                        {DNNL_ARG_WEIGHTS, m.b},
                                        {DNNL_ARG_DST, m.c},
                                        {DNNL_ARG_SCRATCHPAD, m.scratchpad}};
        POLYALPACA_DNNL_CHECK(dnnl_primitive_execute(m.primitive, stream_, 4, args));
        POLYALPACA_DNNL_CHECK(dnnl_stream_wait(stream_));
#else
        (void)operands, (void)c, (void)accumulate;
        fail("oneDNN's matmul on the CPU: this build has no oneDNN (Debian: apt-get install libdnnl-dev)");
#endif
    }

private:
#ifdef POLYALPACA_ONEDNN
    /// Primitives kept at most: a product's rows follow the sequence length, and a run over many lengths would
    /// otherwise keep one primitive per length and shape.
    static constexpr std::size_t max_primitives = 256;
    static constexpr std::size_t scratchpad_alignment = 64;

    /// One shape's primitive and the memory objects its calls point at their operands and the shared scratchpad.
    struct Matmul {
        dnnl_memory_t a = nullptr, b = nullptr, c = nullptr, scratchpad = nullptr;
        dnnl_primitive_t primitive = nullptr;
        std::size_t scratchpad_bytes = 0;
    };
    void clear() {
        for (auto& [key, m] : matmuls_) {
            for (auto* memory : {m.a, m.b, m.c, m.scratchpad}) dnnl_memory_destroy(memory);
            dnnl_primitive_destroy(m.primitive);
        }
        matmuls_.clear();
    }
    /// op(x) of operand x as oneDNN's (rows, cols) memory, or (1, batch, rows, cols) for a batch, in its strides.
    static dnnl_memory_desc_t describe(MatmulOperand const& x, dnnl_data_type_t type) {
        Index const stride = x.row_stride != 0 ? x.row_stride : x.transposed ? x.rows : x.cols;
        Index const row_step = x.transposed ? 1 : stride, col_step = x.transposed ? stride : 1;
        dnnl_memory_desc_t md;
        if (x.batch == 1) {
            dnnl_dims_t const dims{x.rows, x.cols}, strides{row_step, col_step};
            POLYALPACA_DNNL_CHECK(dnnl_memory_desc_init_by_strides(&md, 2, dims, type, strides));
        } else {
            // As 4-D, with a leading dimension of 1 and the largest extent for its stride, so that heads strided
            // through an activation read as a permuted dense layout: oneDNN 2.6 takes its brgemm (AMX) kernels
            // only then, and runs other strided batches on its generic GEMM, 2-4x slower.
            Index const extent = std::max({x.batch * x.batch_stride, x.rows * row_step, x.cols * col_step});
            dnnl_dims_t const dims{1, x.batch, x.rows, x.cols}, strides{extent, x.batch_stride, row_step, col_step};
            POLYALPACA_DNNL_CHECK(dnnl_memory_desc_init_by_strides(&md, 4, dims, type, strides));
        }
        return md;
    }
    Matmul make_matmul(Operands operands, MatmulOperand const& a, MatmulOperand const& b, MatmulResult const& c,
                       bool accumulate) {
        auto const type = operands == Operands::bf16 ? dnnl_bf16 : dnnl_f32;
        auto const a_md = describe(a, type);
        auto const b_md = describe(b, type);
        auto const c_md = describe({c.data, a.rows, b.cols, false, c.row_stride, a.batch, c.batch_stride}, dnnl_f32);
        dnnl_matmul_desc_t desc;
        POLYALPACA_DNNL_CHECK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, nullptr, &c_md));
        dnnl_primitive_attr_t attr = nullptr;
        dnnl_post_ops_t sum = nullptr;
        POLYALPACA_DNNL_CHECK(dnnl_primitive_attr_create(&attr));
        // Each primitive would own a scratchpad (a packed copy of an operand) for as long as it lives; one buffer,
        // grown to the largest, serves them all, as calls run one at a time.
        POLYALPACA_DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
        if (accumulate) {
            POLYALPACA_DNNL_CHECK(dnnl_post_ops_create(&sum));
            POLYALPACA_DNNL_CHECK(dnnl_post_ops_append_sum(sum, 1.0f));
            POLYALPACA_DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, sum));
        }
        dnnl_primitive_desc_t pd = nullptr;
        auto const status = dnnl_primitive_desc_create(&pd, &desc, attr, engine_, nullptr);
        if (sum) dnnl_post_ops_destroy(sum);
        dnnl_primitive_attr_destroy(attr);
        require(status == dnnl_success, "oneDNN has no ", operands == Operands::bf16 ? "bf16" : "fp32",
                " matmul for (", a.rows, " x ", a.cols, ") x (", b.rows, " x ", b.cols, ") (dnnl_status_t ",
                int(status), ")");
        Matmul m;
        auto const* scratchpad_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        m.scratchpad_bytes = dnnl_memory_desc_get_size(scratchpad_md);
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.scratchpad, scratchpad_md, engine_, DNNL_MEMORY_NONE));
        auto const made = dnnl_primitive_create(&m.primitive, pd);
        dnnl_primitive_desc_destroy(pd);
        POLYALPACA_DNNL_CHECK(made);
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.a, &a_md, engine_, DNNL_MEMORY_NONE));
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.b, &b_md, engine_, DNNL_MEMORY_NONE));
        POLYALPACA_DNNL_CHECK(dnnl_memory_create(&m.c, &c_md, engine_, DNNL_MEMORY_NONE));
        return m;
    }
    using Key = std::tuple<Operands, MatmulOperand, MatmulOperand, Index, Index, bool>;
    std::map<Key, Matmul> matmuls_;
    std::vector<std::byte> scratchpad_;
    dnnl_engine_t engine_ = nullptr;
    dnnl_stream_t stream_ = nullptr;
#endif
};

}  // namespace polyalpaca::cpu
