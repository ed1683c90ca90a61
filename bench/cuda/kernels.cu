// CUDA kernel micro-benchmarks: the GEMM shapes of BLOOM-560m and LLaMA-7B at 2048 tokens in every GemmMath mode
// plus a native bf16 x bf16 cuBLASLt GEMM as the ceiling, attention forward/backward at 4 x 512 (the GEMM path and
// the flash kernels, fp32 and bf16 tensor-core), layer/RMS norm, cross-entropy over BLOOM's 250880-token
// vocabulary and AdamW over 560M values. Prints markdown tables with ms per call, the achieved TFLOP/s or GB/s and the share of the H100 SXM
// peak (bench_common.cuh).
//
//   polyalpaca_bench_cuda_kernels [--only gemm|attention|norm|loss|adamw] [--repeat N] [--tokens N]
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <cublasLt.h>
#include <cuda_bf16.h>

#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/backend/cuda/attention.cuh"
#include "polyalpaca/backend/cuda/loss.cuh"
#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/layers/alibi.hpp"
#include "polyalpaca/layers/lm_head.hpp"

#include "bench_common.cuh"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using pa::bench::Peaks;
using pa::bench::time_ms;

namespace {

struct Settings {
    int repeat = 10;
    int tokens = 2048;
    std::string only;
    bool wants(char const* part) const { return only.empty() || only == part; }
};

__global__ void fill_uniform_kernel(float* x, std::size_t n, std::uint64_t seed) {
    for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
        std::uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;  // splitmix64 finaliser
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
        h ^= h >> 31;
        x[i] = float(double(h >> 11) * 0x1.0p-52 - 1.0);
    }
}

/// n device floats, uniform in [-1, 1), filled on the device (the values only set softmax ranges; speed is what
/// is measured, and drawing billions of values on the host would take longer than the benchmarks).
cu::DeviceBuffer<float> random_device(cu::Context& ctx, std::size_t n, std::uint64_t seed) {
    cu::DeviceBuffer<float> d(n);
    if (n == 0) return d;
    fill_uniform_kernel<<<4096, 256, 0, ctx.stream()>>>(d.data(), n, seed * 0x2545f4914f6cdd1dull);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
    return d;
}

/// One machine-readable line per measurement, for bench/device_check.sh's summary.
void result_line(char const* kernel, char const* math, double ms, double rate, char const* unit, double peak_pct) {
    std::printf("RESULT kernel=%s math=%s ms=%.3f rate=%.1f unit=%s peak_pct=%.1f\n", kernel, math, ms, rate, unit,
                peak_pct);
}

// ---- GEMMs -------------------------------------------------------------------------------------------------------

/// One product of a training step: (m x k) . (k x n) with the operand transposes the backend uses.
struct GemmShape {
    std::string what;
    pa::Index m, k, n;
    cu::Trans ta, tb;
    bool in_step = true;  ///< counted in the model's FLOP-weighted total (false: a reference shape)
    double per_step = 1;  ///< how many times a training step on `tokens` rows runs it (LM head chunks)
};

/// The three GEMMs of a linear layer on `tokens` rows (HF layout: W is (out, in)):
/// forward y = x W^T, backward dX = dY W, dW = dY^T x.
void add_linear(std::vector<GemmShape>& out, std::string const& name, pa::Index tokens, pa::Index in, pa::Index o,
                bool in_step = true, double per_step = 1) {
    out.push_back({name + " fwd", tokens, in, o, cu::Trans::No, cu::Trans::Yes, in_step, per_step});
    out.push_back({name + " dX", tokens, o, in, cu::Trans::No, cu::Trans::No, in_step, per_step});
    out.push_back({name + " dW", o, tokens, in, cu::Trans::Yes, cu::Trans::No, in_step, per_step});
}

/// The LM head as the models run it: LmHeadLoss holds at most max_chunk_logits logits, so `rows` tokens at a
/// time (66 for BLOOM's 250880-token vocabulary); the whole-batch product is timed too, as a reference.
template <int Vocab, int Dim>
void add_lm_head(std::vector<GemmShape>& out, std::string const& model, pa::Index tokens) {
    pa::Index const rows =
        std::clamp<pa::Index>(pa::LmHeadLoss<pa::Cuda, float, Vocab, Dim>::max_chunk_logits / Vocab, 1, tokens);
    std::string const v = std::to_string(Vocab);
    add_linear(out, model + " lm_head (vocab " + v + ", chunk of " + std::to_string(rows) + " rows)", rows, Dim, Vocab,
               true, double(tokens) / double(rows));
    add_linear(out, model + " lm_head (vocab " + v + ", all rows at once; reference)", tokens, Dim, Vocab, false);
}

// per_step: how often a full-parameter training step runs the product (layers x projections of that shape).
std::vector<GemmShape> bloom560m_gemms(pa::Index tokens) {
    std::vector<GemmShape> s;
    add_linear(s, "bloom-560m query_key_value", tokens, 1024, 3072, true, 24);
    add_linear(s, "bloom-560m attn dense", tokens, 1024, 1024, true, 24);
    add_linear(s, "bloom-560m dense_h_to_4h", tokens, 1024, 4096, true, 24);
    add_linear(s, "bloom-560m dense_4h_to_h", tokens, 4096, 1024, true, 24);
    add_lm_head<250880, 1024>(s, "bloom-560m", tokens);
    return s;
}

std::vector<GemmShape> llama7b_gemms(pa::Index tokens) {
    std::vector<GemmShape> s;
    add_linear(s, "llama-7b q/k/v/o_proj", tokens, 4096, 4096, true, 4 * 32);
    add_linear(s, "llama-7b gate/up_proj", tokens, 4096, 11008, true, 2 * 32);
    add_linear(s, "llama-7b down_proj", tokens, 11008, 4096, true, 32);
    add_lm_head<32000, 4096>(s, "llama-7b", tokens);
    return s;
}

/// The ceiling: the same product with bf16 A, B and D in memory (no fp32 -> bf16 conversion), fp32 accumulation,
/// cuBLASLt's first heuristic, row-major operands expressed as the transposed column-major product.
class NativeBf16Gemm {
public:
    NativeBf16Gemm(cu::Context& ctx, GemmShape const& g) : ctx_(ctx), g_(g) {
        std::size_t const a_n = std::size_t(g.m * g.k), b_n = std::size_t(g.k * g.n), c_n = std::size_t(g.m * g.n);
        POLYALPACA_CUDA_CHECK(cudaMalloc(&a_, a_n * 2));
        POLYALPACA_CUDA_CHECK(cudaMalloc(&b_, b_n * 2));
        POLYALPACA_CUDA_CHECK(cudaMalloc(&c_, c_n * 2));
        POLYALPACA_CUDA_CHECK(cudaMemset(a_, 0, a_n * 2));
        POLYALPACA_CUDA_CHECK(cudaMemset(b_, 0, b_n * 2));
        POLYALPACA_CUDA_CHECK(cudaDeviceSynchronize());
        // Row-major C (m, n) = op(A) op(B) is column-major C^T (n, m) = op(B)^T op(A)^T: cuBLASLt's "A" is our b.
        // Our a stored row-major is (m, k) untransposed or (k, m) transposed; seen column-major it is its transpose.
        auto const col_rows = [](pa::Index rows, pa::Index cols) { return std::pair{cols, rows}; };
        auto const [a_r, a_c] = g.ta == cu::Trans::No ? col_rows(g.m, g.k) : col_rows(g.k, g.m);
        auto const [b_r, b_c] = g.tb == cu::Trans::No ? col_rows(g.k, g.n) : col_rows(g.n, g.k);
        POLYALPACA_CUDA_CHECK(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t const op_first = g.tb == cu::Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
        cublasOperation_t const op_second = g.ta == cu::Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
        POLYALPACA_CUDA_CHECK(
            cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
        POLYALPACA_CUDA_CHECK(
            cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
        POLYALPACA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&la_, CUDA_R_16BF, std::uint64_t(b_r), std::uint64_t(b_c), b_r));
        POLYALPACA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lb_, CUDA_R_16BF, std::uint64_t(a_r), std::uint64_t(a_c), a_r));
        POLYALPACA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lc_, CUDA_R_16BF, std::uint64_t(g.n), std::uint64_t(g.m), g.n));
        cublasLtMatmulPreference_t pref = nullptr;
        POLYALPACA_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        std::size_t const ws = ctx.workspace_bytes();
        POLYALPACA_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                                   sizeof(ws)));
        int found = 0;
        POLYALPACA_CUDA_CHECK(
            cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), desc_, la_, lb_, lc_, lc_, pref, 1, &heuristic_, &found));
        (void)cublasLtMatmulPreferenceDestroy(pref);
        pa::require(found > 0, "native bf16 GEMM: cuBLASLt has no algorithm for ", g.what);
    }
    ~NativeBf16Gemm() {
        if (lc_) (void)cublasLtMatrixLayoutDestroy(lc_);
        if (lb_) (void)cublasLtMatrixLayoutDestroy(lb_);
        if (la_) (void)cublasLtMatrixLayoutDestroy(la_);
        if (desc_) (void)cublasLtMatmulDescDestroy(desc_);
        (void)cudaFree(a_);
        (void)cudaFree(b_);
        (void)cudaFree(c_);
    }
    NativeBf16Gemm(NativeBf16Gemm const&) = delete;
    NativeBf16Gemm& operator=(NativeBf16Gemm const&) = delete;

    void run() {
        float const alpha = 1.0f, beta = 0.0f;
        POLYALPACA_CUDA_CHECK(cublasLtMatmul(ctx_.cublaslt(), desc_, &alpha, b_, la_, a_, lb_, &beta, c_, lc_, c_, lc_,
                                             &heuristic_.algo, ctx_.workspace(), ctx_.workspace_bytes(),
                                             ctx_.stream()));
    }

private:
    cu::Context& ctx_;
    GemmShape g_;
    void* a_ = nullptr;
    void* b_ = nullptr;
    void* c_ = nullptr;
    cublasLtMatmulDesc_t desc_ = nullptr;
    cublasLtMatrixLayout_t la_ = nullptr, lb_ = nullptr, lc_ = nullptr;
    cublasLtMatmulHeuristicResult_t heuristic_{};
};

void bench_gemms(cu::Context& ctx, Settings const& s) {
    std::printf("\n## GEMMs at %d tokens (fp32 storage; GemmMath picks the multiply)\n\n", s.tokens);
    std::printf("| GEMM | m x k x n | fp32 ms | fp32 TFLOP/s | %% | tf32 ms | tf32 TFLOP/s | %% | bf16 ms | "
                "bf16 TFLOP/s | %% | native bf16 ms | native TFLOP/s | %% |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    auto shapes = bloom560m_gemms(s.tokens);
    for (auto& g : llama7b_gemms(s.tokens)) shapes.push_back(g);
    // Per model (the name's first word) and mode: FLOPs and ms of all the step's GEMMs (each shape times per_step),
    // so the rate is what a full-parameter step's GEMMs reach together.
    std::map<std::string, std::array<double, 8>> totals;
    std::array<double, 8> reference{};
    for (auto const& g : shapes) {
        auto& total = g.in_step ? totals[g.what.substr(0, g.what.find(' '))] : reference;
        pa::Index const a_rows = g.ta == cu::Trans::No ? g.m : g.k, a_cols = g.ta == cu::Trans::No ? g.k : g.m;
        pa::Index const b_rows = g.tb == cu::Trans::No ? g.k : g.n, b_cols = g.tb == cu::Trans::No ? g.n : g.k;
        double const flops = 2.0 * double(g.m) * double(g.k) * double(g.n);
        std::printf("| %s | %lld x %lld x %lld |", g.what.c_str(), (long long)g.m, (long long)g.k, (long long)g.n);
        {
            auto a = random_device(ctx, std::size_t(a_rows * a_cols), 1);
            auto b = random_device(ctx, std::size_t(b_rows * b_cols), 2);
            cu::DeviceBuffer<float> c(std::size_t(g.m * g.n));
            pa::View<float const> va(a.data(), a_rows, a_cols), vb(b.data(), b_rows, b_cols);
            pa::View<float> vc(c.data(), g.m, g.n);
            struct Mode {
                cu::GemmMath math;
                double peak;
            };
            int slot = 0;
            for (Mode const mode : {Mode{cu::GemmMath::Fp32, Peaks::fp32_tflops}, Mode{cu::GemmMath::Tf32, Peaks::tf32_tflops},
                                    Mode{cu::GemmMath::Bf16, Peaks::bf16_tflops}}) {
                ctx.set_gemm_math(mode.math);
                int const repeat = mode.math == cu::GemmMath::Fp32 ? std::max(1, s.repeat / 3) : s.repeat;
                double const ms = time_ms(ctx, 2, repeat, [&] { cu::gemm(ctx, g.ta, g.tb, va, vb, nullptr, vc); });
                double const tflops = flops / (ms * 1e-3) * 1e-12;
                std::printf(" %.3f | %.1f | %.0f%% |", ms, tflops, 100.0 * tflops / mode.peak);
                total[std::size_t(2 * slot)] += g.per_step * flops;
                total[std::size_t(2 * slot + 1)] += g.per_step * ms;
                ++slot;
            }
            ctx.set_gemm_math(cu::GemmMath::Bf16);
        }
        NativeBf16Gemm native(ctx, g);
        double const ms = time_ms(ctx, 2, s.repeat, [&] { native.run(); });
        double const tflops = flops / (ms * 1e-3) * 1e-12;
        std::printf(" %.3f | %.1f | %.0f%% |\n", ms, tflops, 100.0 * tflops / Peaks::bf16_tflops);
        total[6] += g.per_step * flops;
        total[7] += g.per_step * ms;
        std::fflush(stdout);
    }
    char const* const mode_names[] = {"fp32", "tf32", "bf16", "native-bf16"};
    double const mode_peaks[] = {Peaks::fp32_tflops, Peaks::tf32_tflops, Peaks::bf16_tflops, Peaks::bf16_tflops};
    std::printf("\n");
    for (auto const& [model, total] : totals)
        for (int m = 0; m < 4; ++m) {
            double const tflops = total[std::size_t(2 * m)] / (total[std::size_t(2 * m + 1)] * 1e-3) * 1e-12;
            std::printf("RESULT kernel=gemm-step-%s math=%s ms=%.3f rate=%.1f unit=TFLOP/s peak_pct=%.1f\n",
                        model.c_str(), mode_names[m], total[std::size_t(2 * m + 1)], tflops,
                        100.0 * tflops / mode_peaks[m]);
        }
}

// ---- attention ---------------------------------------------------------------------------------------------------

/// Milliseconds of the GEMM path's forward and backward per model, for the flash rows' speedup column.
std::map<std::string, std::array<double, 2>>& gemm_attention_ms() {
    static std::map<std::string, std::array<double, 2>> ms;
    return ms;
}

/// One table row per model for the attention path `kernel` (the GEMM path's header is printed by bench_attention,
/// the flash kernels' by bench_flash_attention). The GEMM path runs in GemmMath::Bf16; the flash kernels in
/// `flash_math`: Bf16 selects the tensor-core kernels, Fp32 the fp32 CUDA-core ones.
void bench_attention_path(cu::Context& ctx, Settings const& s, cu::AttentionKernel kernel,
                          cu::GemmMath flash_math = cu::GemmMath::Bf16) {
    bool const flash = kernel == cu::AttentionKernel::Flash;
    bool const tensor_cores = !flash || flash_math == cu::GemmMath::Bf16;
    ctx.set_gemm_math(flash ? flash_math : cu::GemmMath::Bf16);
    struct Case {
        char const* model;
        int heads, head_dim;
        bool alibi;
    };
    for (Case const c : {Case{"bloom-560m (ALiBi)", 16, 64, true}, Case{"llama-7b", 32, 128, false}}) {
        pa::require(!flash || cu::flash::supported_head_dim(c.head_dim),
                    "the flash kernels are not compiled for head_dim ", c.head_dim, " (POLYALPACA_FLASH_HEAD_DIMS)");
        pa::AttentionShape const shape{4, 512, c.heads, c.heads, c.head_dim};
        pa::Index const n = pa::Index(shape.batch) * shape.seq, cols = pa::Index(c.heads) * c.head_dim;
        pa::Index const rows = pa::Index(shape.batch) * shape.heads * shape.seq;
        std::size_t const nd = std::size_t(n * cols);
        auto q = random_device(ctx, nd, 3), k = random_device(ctx, nd, 4), v = random_device(ctx, nd, 5);
        auto dout = random_device(ctx, nd, 6);
        cu::DeviceBuffer<float> out(nd), dq(nd), dk(nd), dv(nd);
        ctx.set_attention_kernel(kernel);
        pa::Index const state_cols = cu::attention_state_cols(ctx, shape);  // seq, or 2 on the flash path
        cu::DeviceBuffer<float> state(std::size_t(rows * state_cols));
        std::vector<float> slopes_host;
        for (double x : pa::alibi_slopes(c.heads)) slopes_host.push_back(float(x));
        float const scale = 1.0f / std::sqrt(float(c.head_dim));
        pa::View<float const> vq(q.data(), n, cols), vk(k.data(), n, cols), vv(v.data(), n, cols),
            vdout(dout.data(), n, cols);
        pa::View<float> vout(out.data(), n, cols), vstate(state.data(), rows, state_cols);
        float const* slope_ptr = c.alibi ? slopes_host.data() : nullptr;  // a host array
        auto forward = [&] { cu::attention_forward(ctx, vq, vk, vv, vout, vstate, shape, slope_ptr, scale); };
        double const fwd_ms = time_ms(ctx, 2, s.repeat, forward);
        cu::fill_zero(ctx, dq.data(), nd);  // the backward adds into dq, dk, dv: zeroed once, outside the timing
        cu::fill_zero(ctx, dk.data(), nd);
        cu::fill_zero(ctx, dv.data(), nd);
        double const bwd_ms = time_ms(ctx, 2, s.repeat, [&] {
            cu::attention_backward(ctx, vdout, vq, vk, vv, pa::View<float const>(vstate),
                                   pa::View<float>(dq.data(), n, cols), pa::View<float>(dk.data(), n, cols),
                                   pa::View<float>(dv.data(), n, cols), shape, scale);
        });
        ctx.set_attention_kernel(cu::AttentionKernel::Gemm);

        std::string const key = std::string("attention-") + (c.alibi ? "bloom-560m" : "llama-7b");
        double const pairs = flash ? double(shape.seq) * (shape.seq + 1) / 2 : double(shape.seq) * shape.seq;
        double const flops = 4.0 * shape.batch * shape.heads * pairs * shape.head_dim;
        double const peak = tensor_cores ? Peaks::bf16_tflops : Peaks::fp32_tflops;
        double const f = flops / (fwd_ms * 1e-3) * 1e-12, b = 2.0 * flops / (bwd_ms * 1e-3) * 1e-12;
        char const* math = tensor_cores ? "bf16" : "fp32";
        std::printf("| %s |", c.model);
        if (flash) std::printf(" %s |", tensor_cores ? "bf16 tensor cores" : "fp32 CUDA cores");
        std::printf(" %d x %d | %.3f | %.1f | %.1f%% | %.3f | %.1f | %.1f%% |", c.heads, c.head_dim, fwd_ms, f,
                    100.0 * f / peak, bwd_ms, b, 100.0 * b / peak);
        if (!flash) {
            gemm_attention_ms()[key] = {fwd_ms, bwd_ms};
            std::printf("\n");
        } else if (auto const it = gemm_attention_ms().find(key); it != gemm_attention_ms().end()) {
            std::printf(" %.2f | %.2f |\n", it->second[0] / fwd_ms, it->second[1] / bwd_ms);
        } else {
            std::printf(" - | - |\n");
        }
        std::string const name = key + (!flash ? "" : tensor_cores ? "-flash-bf16" : "-flash");
        result_line((name + "-fwd").c_str(), math, fwd_ms, f, "TFLOP/s", 100.0 * f / peak);
        result_line((name + "-bwd").c_str(), math, bwd_ms, b, "TFLOP/s", 100.0 * b / peak);
        std::fflush(stdout);
    }
}

void bench_attention(cu::Context& ctx, Settings const& s) {
    std::printf("\n## Causal attention at batch 4 x seq 512 (GemmMath bf16)\n\n");
    std::printf("FLOPs count the full T x T square (forward 4 B H T^2 d, backward twice that), as train/flops.hpp.\n\n");
    std::printf("| model | heads x head_dim | fwd ms | fwd TFLOP/s | %% bf16 | bwd ms | bwd TFLOP/s | %% bf16 |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
    bench_attention_path(ctx, s, cu::AttentionKernel::Gemm);
}

/// The flash kernels (AttentionKernel::Flash) on the same shapes; run as the last section, so that a fault in
/// kernels that are new to the GPU cannot take the other sections' results with it.
void bench_flash_attention(cu::Context& ctx, Settings const& s) {
    std::printf("\n## Causal attention at batch 4 x seq 512, flash kernels\n\n");
    std::printf("FLOPs count only the causal half (T (T + 1) / 2 pairs; backward twice the forward), against the peak "
                "of the units that run them (fp32 in GemmMath::Fp32, bf16 tensor cores in GemmMath::Bf16); x = the "
                "GEMM path's ms / the flash kernels' ms.\n\n");
    std::printf("| model | kernels | heads x head_dim | fwd ms | fwd TFLOP/s | %% peak | bwd ms | bwd TFLOP/s "
                "| %% peak | fwd x | bwd x |\n");
    std::printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    bench_attention_path(ctx, s, cu::AttentionKernel::Flash, cu::GemmMath::Fp32);
    bench_attention_path(ctx, s, cu::AttentionKernel::Flash, cu::GemmMath::Bf16);  // last: the newest kernels
    ctx.set_gemm_math(cu::GemmMath::Bf16);
}

// ---- memory-bound ops --------------------------------------------------------------------------------------------

void print_bandwidth_row(char const* what, double ms, double bytes) {
    double const tbps = bytes / (ms * 1e-3) * 1e-12;
    std::printf("| %s | %.3f | %.0f | %.0f%% |\n", what, ms, tbps * 1e3, 100.0 * tbps / Peaks::hbm_tbps);
    std::string key;  // "layer_norm fwd (2048 x 1024)" -> "layer_norm-fwd-2048x1024"
    for (char const* c = what; *c; ++c) {
        if (*c == '(' || *c == ')') continue;
        if (*c == ' ' && (c[1] == 'x' || (c > what && c[-1] == 'x'))) continue;
        key += *c == ' ' ? '-' : *c;
    }
    result_line(key.c_str(), "fp32", ms, tbps * 1e3, "GB/s", 100.0 * tbps / Peaks::hbm_tbps);
    std::fflush(stdout);
}

void print_bandwidth_header(char const* title, char const* bytes_rule) {
    std::printf("\n## %s\n\nBytes counted: %s.\n\n| op | ms | GB/s | %% HBM |\n|---|---:|---:|---:|\n", title,
                bytes_rule);
}

void bench_norms(cu::Context& ctx, Settings const& s) {
    print_bandwidth_header("Norms at 2048 rows",
                           "forward reads x and writes y (2 N D floats); backward reads dy and x and updates dx "
                           "(4 N D floats; the parameter gradients' column sums are not counted)");
    pa::Index const n = s.tokens;
    for (pa::Index d : {pa::Index(1024), pa::Index(4096)}) {
        std::size_t const nd = std::size_t(n * d);
        auto x = random_device(ctx, nd, 7), dy = random_device(ctx, nd, 8), gamma = random_device(ctx, std::size_t(d), 9),
             beta = random_device(ctx, std::size_t(d), 10);
        cu::DeviceBuffer<float> y(nd), dx(nd), mean(static_cast<std::size_t>(n)), rstd(static_cast<std::size_t>(n)),
            dgamma(static_cast<std::size_t>(d)), dbeta(static_cast<std::size_t>(d));
        pa::View<float const> vx(x.data(), n, d), vdy(dy.data(), n, d);
        pa::View<float> vy(y.data(), n, d), vdx(dx.data(), n, d);
        double const fwd_bytes = 2.0 * double(nd) * 4, bwd_bytes = 4.0 * double(nd) * 4;
        std::string const dims = " (" + std::to_string(n) + " x " + std::to_string(d) + ")";
        double ms = time_ms(ctx, 2, s.repeat, [&] {
            cu::layer_norm_forward(ctx, vx, gamma.data(), beta.data(), 1e-5f, vy, mean.data(), rstd.data());
        });
        print_bandwidth_row(("layer_norm fwd" + dims).c_str(), ms, fwd_bytes);
        ms = time_ms(ctx, 2, s.repeat, [&] {
            cu::layer_norm_backward(ctx, vdy, vx, gamma.data(), mean.data(), rstd.data(), vdx, dgamma.data(), dbeta.data());
        });
        print_bandwidth_row(("layer_norm bwd" + dims).c_str(), ms, bwd_bytes);
        ms = time_ms(ctx, 2, s.repeat, [&] { cu::rms_norm_forward(ctx, vx, gamma.data(), 1e-6f, vy, rstd.data()); });
        print_bandwidth_row(("rms_norm fwd" + dims).c_str(), ms, fwd_bytes);
        ms = time_ms(ctx, 2, s.repeat,
                     [&] { cu::rms_norm_backward(ctx, vdy, vx, gamma.data(), rstd.data(), vdx, dgamma.data()); });
        print_bandwidth_row(("rms_norm bwd" + dims).c_str(), ms, bwd_bytes);
    }
}

/// One training chunk of BLOOM-560m's LM head as a LoRA step runs it (frozen head: logits GEMM, loss, dX GEMM), in
/// Bf16: the generic op sequence (fp32 dlogits, converted by the dX GEMM) against cuda::lm_head_chunk_forward_backward
/// (bf16 dlogits written by the loss kernel). Rows: as many as Cuda::lm_head_chunk_logits allows.
void bench_lm_head_chunk(cu::Context& ctx, Settings const& s) {
    ctx.set_gemm_math(cu::GemmMath::Bf16);
    pa::Index const vocab = 250880, dim = 1024, rows = pa::Cuda::lm_head_chunk_logits / vocab;
    auto hidden = random_device(ctx, std::size_t(rows * dim), 13);
    auto weight = random_device(ctx, std::size_t(vocab * dim), 14);
    cu::DeviceBuffer<float> logits(std::size_t(rows * vocab)), dlogits(std::size_t(rows * vocab)),
        dhidden(std::size_t(rows * dim));
    std::vector<std::int32_t> targets(static_cast<std::size_t>(rows));
    pa::Rng rng(15);
    for (auto& t : targets) t = std::int32_t(rng.below(std::uint64_t(vocab)));
    std::span<std::int32_t const> const chunk_targets(targets);
    pa::View<float const> vh(hidden.data(), rows, dim), vw(weight.data(), vocab, dim);
    pa::View<float> vlogits(logits.data(), rows, vocab), vdh(dhidden.data(), rows, dim);
    float const grad_scale = 1.0f / float(rows);
    double const generic_ms = time_ms(ctx, 2, s.repeat, [&] {
        cu::linear_forward(ctx, vh, vw, nullptr, vlogits);
        pa::View<float> vd(dlogits.data(), rows, vocab);
        (void)cu::cross_entropy(ctx, pa::View<float const>(vlogits), chunk_targets, pa::ignore_index, vd, grad_scale);
        cu::linear_backward(ctx, vh, vw, pa::View<float const>(vd), vdh, pa::View<float>{}, nullptr);
    });
    double const fused_ms = time_ms(ctx, 2, s.repeat, [&] {
        (void)cu::lm_head_chunk_forward_backward(ctx, vh, vw, chunk_targets, pa::ignore_index, grad_scale, vlogits,
                                                 vdh, pa::View<float>{});
    });
    double const flops = 4.0 * double(rows) * dim * vocab;  // forward and dX GEMMs
    std::printf("\n## LM head training chunk, BLOOM-560m (%lld x %lld x %lld, frozen head), GemmMath bf16\n\n",
                (long long)rows, (long long)dim, (long long)vocab);
    std::printf("logits GEMM + cross-entropy + dX GEMM; TFLOP/s counts the two GEMMs (4 rows D V).\n\n");
    std::printf("| dlogits | ms | TFLOP/s | %% bf16 | x |\n|---|---:|---:|---:|---:|\n");
    for (auto [name, key, ms] : {std::tuple{"fp32, converted by the GEMM (generic ops)", "lm-head-chunk-generic",
                                            generic_ms},
                                 std::tuple{"bf16 from the loss kernel (lm_head.cuh)", "lm-head-chunk-bf16-dlogits",
                                            fused_ms}}) {
        double const tflops = flops / (ms * 1e-3) * 1e-12;
        std::printf("| %s | %.3f | %.1f | %.1f%% | %.2f |\n", name, ms, tflops, 100.0 * tflops / Peaks::bf16_tflops,
                    generic_ms / ms);
        result_line(key, "bf16", ms, tflops, "TFLOP/s", 100.0 * tflops / Peaks::bf16_tflops);
    }
    std::fflush(stdout);
}

void bench_loss(cu::Context& ctx, Settings const& s) {
    print_bandwidth_header("Cross-entropy (softmax + loss + gradient) over BLOOM's vocabulary",
                           "reads the logits and writes dlogits (2 N V floats)");
    pa::Index const n = s.tokens, vocab = 250880;
    std::size_t const nv = std::size_t(n * vocab);
    auto logits = random_device(ctx, nv, 11);
    cu::DeviceBuffer<float> dlogits(nv);
    std::vector<std::int32_t> targets(static_cast<std::size_t>(n));
    pa::Rng rng(12);
    for (auto& t : targets) t = std::int32_t(rng.below(std::uint64_t(vocab)));
    pa::View<float const> vl(logits.data(), n, vocab);
    pa::View<float> vd(dlogits.data(), n, vocab);
    double const ms = time_ms(ctx, 2, s.repeat, [&] {
        (void)cu::cross_entropy(ctx, vl, std::span<std::int32_t const>(targets), pa::ignore_index, vd, 1.0f / float(n));
    });
    print_bandwidth_row(("cross_entropy (" + std::to_string(n) + " x 250880)").c_str(), ms, 2.0 * double(nv) * 4);
    bench_lm_head_chunk(ctx, s);
}

void bench_adamw(cu::Context& ctx, Settings const& s) {
    print_bandwidth_header("AdamW over 560M fp32 values (BLOOM-560m full-parameter)",
                           "reads param, grad, exp_avg, exp_avg_sq and writes param, exp_avg, exp_avg_sq (7 floats "
                           "per value)");
    pa::Index const n = 559214592;  // bigscience/bloom-560m's parameter count
    std::size_t const count = static_cast<std::size_t>(n);
    cu::DeviceBuffer<float> p(count), g(count), m(count), v(count);
    cu::fill_zero(ctx, p.data(), std::size_t(n));
    cu::fill_zero(ctx, g.data(), std::size_t(n));
    cu::fill_zero(ctx, m.data(), std::size_t(n));
    cu::fill_zero(ctx, v.data(), std::size_t(n));
    long step = 0;
    double const ms = time_ms(ctx, 2, s.repeat, [&] {
        cu::adamw_update(ctx, p.data(), g.data(), m.data(), v.data(), n,
                         cu::AdamWStep{1e-4, 0.9, 0.999, 1e-8, 0.01, ++step});
    });
    print_bandwidth_row("adamw_update (559214592 values)", ms, 7.0 * double(n) * 4);
}

}  // namespace

int main(int argc, char** argv) try {
    pa::bench::Args const args(argc, argv);
    if (args.flag("--help") || args.flag("-h")) {
        std::printf("usage: polyalpaca_bench_cuda_kernels [--only gemm|attention|norm|loss|adamw] [--repeat N] "
                    "[--tokens N]\n");
        return 0;
    }
    Settings s;
    s.repeat = args.integer("--repeat", s.repeat);
    s.tokens = args.integer("--tokens", s.tokens);
    s.only = args.value("--only", "");
    pa::require(s.only.empty() || s.only == "gemm" || s.only == "attention" || s.only == "norm" || s.only == "loss" ||
                    s.only == "adamw",
                "--only must be gemm, attention, norm, loss or adamw, got '", s.only, "'");
    if (cu::device_count() == 0) {
        std::printf("polyalpaca_bench_cuda_kernels: no CUDA device\n");
        return 77;
    }
    cu::Context ctx;
    pa::bench::print_device(ctx);
    int failed = 0;
    auto section = [&](char const* name, void (*body)(cu::Context&, Settings const&)) {  // one failure spares the rest
        if (!s.wants(name)) return;
        try {
            body(ctx, s);
        } catch (std::exception const& e) {
            ++failed;
            std::printf("\n%s: failed: %s\n", name, e.what());
            std::fflush(stdout);
        }
    };
    section("gemm", bench_gemms);
    section("attention", bench_attention);
    section("norm", bench_norms);
    section("loss", bench_loss);
    section("adamw", bench_adamw);
    section("attention", bench_flash_attention);
    return failed == 0 ? 0 : 1;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_cuda_kernels: %s\n", e.what());
    return 1;
}
