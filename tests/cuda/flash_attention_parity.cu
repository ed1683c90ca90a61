/// @file tests/cuda/flash_attention_parity.cu
/// @brief attention_forward / attention_backward with AttentionKernel::Flash (backend/cuda/flash_attention.cuh)
/// against the CPU ops on the same random inputs, in both kernel sets: the fp32 CUDA-core kernels (GemmMath::Fp32)
/// and the bf16 tensor-core kernels (GemmMath::Bf16); skips (77) without a GPU.
///
/// Errors are max|cuda - cpu| / max|cpu| over each output (tests/cuda/cuda_test.cuh). Fp32: tolerance 2e-5 for out,
/// dq, dk and dv (fp32 on both sides, as the GEMM path in Fp32; the host simulation of the same kernels,
/// tests/unit/flash_attention_tiles.cpp, measures under 1e-6), plus 2^-22 * M with ALiBi, and 1e-6 of
/// max(1, |lse|) for the saved logsumexp against a double loop. M is the largest ALiBi term, slope * (seq - 1):
/// BLOOM's bias (slope * key position, as HF adds it) puts the scores that matter near M (361 at seq 512), where a
/// float's spacing is 2^-23 * M, so each backend's score minus logsumexp is off by up to 2^-23 * M, and every P
/// by that relative (measured on an H100: 2.3e-5 in dv at seq 512, 1.3e-6 for LLaMA-7B's shape without ALiBi).
/// Bf16: the CPU runs on q, k, v and dout rounded to bf16, as the kernels load them, so
/// what remains is the rounding of P and dS to bf16: tolerances 4e-3 (out) and 1e-2 (dq, dk, dv), those of the
/// host simulation (measured there 1.1e-3 and 3.1e-3), and 1e-5 of max(1, |lse|).
/// Every case runs the backward both without the forward's out (kernel 1's pass over the keys finds D) and with it
/// (D = rowsum(dout * out), as layers/attention.hpp calls it).
/// Shapes: the GEMM path's attention shapes (MHA, GQA with head_dim 80 and +=, ALiBi, seq 1, MQA),
/// BLOOM-560m-like (4, 512, 16 heads, 64) with ALiBi and LLaMA-7B-like (1, 512, 32, 128).
/// Also: a state buffer sized for the GEMM path, skipped gradients, bitwise-repeatable backward (no atomics),
/// attention_state_cols, the GEMM fallback for a head_dim without a flash instantiation, a bad state view, and
/// the choice AttentionKernel::Auto (the default) makes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_test.cuh"
#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/backend/cuda/attention.cuh"
#include "polyalpaca/backend/cuda/flash_attention_mma_tile.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/layers/alibi.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using namespace polyalpaca::cuda_test;

namespace {

using Vec = std::vector<float>;
constexpr double tolerance = 2e-5;  // fp32 kernels, every output, before the ALiBi term

/// The bounds of one kernel set; largest_bias is M above (0 without ALiBi).
struct Tolerances {
    double out, grad, lse;
};
Tolerances tolerances(cu::GemmMath math, double largest_bias) {
    double const fp32 = tolerance + std::ldexp(largest_bias, -22);
    return math == cu::GemmMath::Bf16 ? Tolerances{4e-3, 1e-2, 1e-5} : Tolerances{fp32, fp32, 1e-6};
}

/// v with every value rounded to bf16, as the tensor-core kernels load it.
Vec rounded_to_bf16(Vec v) {
    for (auto& x : v) x = cu::flash::from_bf16_bits(cu::flash::to_bf16_bits(x));
    return v;
}

Vec random_vector(pa::Rng& rng, pa::Index n, double std = 1.0) {
    Vec v(static_cast<std::size_t>(n));
    for (auto& x : v) x = float(std * rng.normal());
    return v;
}

bool same_bits(Vec const& a, Vec const& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// The logsumexp of every (b, h, i) row's scores, in double.
std::vector<double> reference_lse(pa::AttentionShape const& s, Vec const& q, Vec const& k, float const* slopes,
                                  float scale) {
    int const group = s.heads / s.kv_heads, hd = s.head_dim;
    pa::Index const qc = pa::Index(s.heads) * hd, kc = pa::Index(s.kv_heads) * hd;
    std::vector<double> lse(std::size_t(pa::Index(s.batch) * s.heads * s.seq)), w(std::size_t(s.seq));
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h)
            for (int i = 0; i < s.seq; ++i) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; ++j) {
                    double dot = 0;
                    for (int e = 0; e < hd; ++e)
                        dot += double(q[std::size_t((b * s.seq + i) * qc + h * hd + e)]) *
                               double(k[std::size_t((b * s.seq + j) * kc + (h / group) * hd + e)]);
                    w[std::size_t(j)] = scale * dot + (slopes ? double(slopes[h]) * j : 0.0);
                    mx = std::max(mx, w[std::size_t(j)]);
                }
                for (int j = 0; j <= i; ++j) sum += std::exp(w[std::size_t(j)] - mx);
                lse[std::size_t((b * s.heads + h) * s.seq + i)] = mx + std::log(sum);
            }
    return lse;
}

struct Options {
    bool alibi = false;
    bool accumulate = false;
    bool gemm_sized_state = false;  ///< probs (rows, seq) as the GEMM path allocates, not (rows, 2)
    bool check_lse = true;
    cu::GemmMath math = cu::GemmMath::Fp32;  ///< Bf16 runs the tensor-core kernels
};

/// One shape: forward, backward (all gradients, added into random values when accumulate), a repeat of the
/// backward compared bitwise, and each gradient alone.
void check_flash(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::AttentionShape s, Options o) {
    ctx.set_attention_kernel(cu::AttentionKernel::Flash);
    ctx.set_gemm_math(o.math);
    bool const bf16 = o.math == cu::GemmMath::Bf16;
    pa::Index const n = pa::Index(s.batch) * s.seq, qc = pa::Index(s.heads) * s.head_dim;
    pa::Index const kc = pa::Index(s.kv_heads) * s.head_dim, rows = pa::Index(s.batch) * s.heads * s.seq;
    auto const q = random_vector(rng, n * qc), k = random_vector(rng, n * kc), v = random_vector(rng, n * kc);
    auto const dout = random_vector(rng, n * qc);
    double const init = o.accumulate ? 1.0 : 0.0;
    auto const dq0 = random_vector(rng, n * qc, init), dk0 = random_vector(rng, n * kc, init),
               dv0 = random_vector(rng, n * kc, init);
    Vec slopes;
    if (o.alibi)
        for (double sl : pa::alibi_slopes(s.heads)) slopes.push_back(float(sl));
    float const* slope_ptr = o.alibi ? slopes.data() : nullptr;
    double largest_bias = 0;
    for (float slope : slopes) largest_bias = std::max(largest_bias, std::abs(double(slope)) * (s.seq - 1));
    Tolerances const tol = tolerances(o.math, largest_bias);
    float const scale = 1.0f / std::sqrt(float(s.head_dim));

    // The CPU's inputs: as given, or as the tensor-core kernels load them.
    Vec const rq = bf16 ? rounded_to_bf16(q) : q, rk = bf16 ? rounded_to_bf16(k) : k,
              rv = bf16 ? rounded_to_bf16(v) : v, rdout = bf16 ? rounded_to_bf16(dout) : dout;
    Vec out(std::size_t(n * qc)), probs(std::size_t(rows * s.seq)), dq = dq0, dk = dk0, dv = dv0;
    pa::cpu::attention_forward<float>(cpu, {rq.data(), n, qc}, {rk.data(), n, kc}, {rv.data(), n, kc},
                                      {out.data(), n, qc}, {probs.data(), rows, s.seq}, s, slope_ptr, scale);
    pa::cpu::attention_backward<float>(cpu, {rdout.data(), n, qc}, {rq.data(), n, qc}, {rk.data(), n, kc},
                                       {rv.data(), n, kc}, {probs.data(), rows, s.seq}, {dq.data(), n, qc},
                                       {dk.data(), n, kc}, {dv.data(), n, kc}, s, scale);

    pa::Index const state_cols = o.gemm_sized_state ? pa::Index(s.seq) : cu::attention_state_cols(ctx, s);
    expect(cu::attention_state_cols(ctx, s) == 2, "attention_state_cols is 2 on the flash path");
    auto cq = to_device(ctx, q), ck = to_device(ctx, k), cv = to_device(ctx, v), cdout = to_device(ctx, dout);
    cu::DeviceBuffer<float> cout(out.size()), cstate(std::size_t(rows * state_cols));
    pa::View<float const> vq(cq.data(), n, qc), vk(ck.data(), n, kc), vv(cv.data(), n, kc), vdo(cdout.data(), n, qc);
    pa::View<float const> vstate(cstate.data(), rows, state_cols);
    cu::attention_forward(ctx, vq, vk, vv, {cout.data(), n, qc}, {cstate.data(), rows, state_cols}, s, slope_ptr,
                          scale);
    auto backward = [&](bool with_q, bool with_k, bool with_v, bool with_out = false) {
        auto cdq = to_device(ctx, dq0), cdk = to_device(ctx, dk0), cdv = to_device(ctx, dv0);
        pa::View<float> const gq = with_q ? pa::View<float>(cdq.data(), n, qc) : pa::View<float>{};
        pa::View<float> const gk = with_k ? pa::View<float>(cdk.data(), n, kc) : pa::View<float>{};
        pa::View<float> const gv = with_v ? pa::View<float>(cdv.data(), n, kc) : pa::View<float>{};
        if (with_out)
            cu::attention_backward(ctx, vdo, pa::View<float const>(cout.data(), n, qc), vq, vk, vv, vstate, gq, gk, gv,
                                   s, scale);
        else
            cu::attention_backward(ctx, vdo, vq, vk, vv, vstate, gq, gk, gv, s, scale);
        return std::vector<Vec>{to_host(ctx, cdq.data(), dq0.size()), to_host(ctx, cdk.data(), dk0.size()),
                                to_host(ctx, cdv.data(), dv0.size())};
    };
    auto const all = backward(true, true, true);
    auto const with_out = backward(true, true, true, true);

    char buf[200];
    std::snprintf(buf, sizeof buf, "flash %s b%d t%d h%d kv%d hd%d%s%s%s", bf16 ? "bf16" : "fp32", s.batch, s.seq,
                  s.heads, s.kv_heads, s.head_dim, o.alibi ? " alibi" : "", o.accumulate ? " +=" : "",
                  o.gemm_sized_state ? " (rows, seq) state" : "");
    std::string const what = buf;
    expect_close(to_host(ctx, cout.data(), out.size()), out, tol.out, what + " out");
    expect_close(all[0], dq, tol.grad, what + " dq");
    expect_close(all[1], dk, tol.grad, what + " dk");
    expect_close(all[2], dv, tol.grad, what + " dv");
    expect_close(with_out[0], dq, tol.grad, what + " dq, D from out");
    expect_close(with_out[1], dk, tol.grad, what + " dk, D from out");
    expect(same_bits(with_out[2], all[2]), what + ": dv must not depend on how D is found");

    if (o.check_lse) {
        auto const state = to_host(ctx, cstate.data(), std::size_t(rows * state_cols));
        auto const lse = reference_lse(s, rq, rk, slope_ptr, scale);
        double worst = 0;
        bool slopes_ok = true;
        for (pa::Index r = 0; r < rows; ++r) {
            double const want = lse[std::size_t(r)];
            worst = std::max(worst, std::abs(double(state[std::size_t(r * state_cols)]) - want) /
                                        std::max(1.0, std::abs(want)));
            float const slope = o.alibi ? slopes[std::size_t((r / s.seq) % s.heads)] : 0.0f;
            slopes_ok &= state[std::size_t(r * state_cols + 1)] == slope;
        }
        if (!std::isfinite(worst)) worst = INFINITY;
        std::printf("  %-48s error %.3e of max(1, |lse|) (tolerance %.1e)\n", (what + " lse").c_str(), worst,
                    tol.lse);
        expect(worst <= tol.lse, what + ": the saved logsumexp differs");
        expect(slopes_ok, what + ": the state's second column must hold the head's ALiBi slope");
    }

    auto const again = backward(true, true, true);
    expect(same_bits(again[0], all[0]) && same_bits(again[1], all[1]) && same_bits(again[2], all[2]),
           what + ": a repeated backward must be bitwise equal");
    auto const q_only = backward(true, false, false), k_only = backward(false, true, false),
               v_only = backward(false, false, true);
    expect(same_bits(q_only[0], all[0]) && same_bits(q_only[1], dk0) && same_bits(q_only[2], dv0),
           what + ": dq alone must equal dq of the full backward and leave dk, dv alone");
    expect(same_bits(k_only[1], all[1]) && same_bits(k_only[0], dq0) && same_bits(k_only[2], dv0),
           what + ": dk alone must equal dk of the full backward and leave dq, dv alone");
    expect(same_bits(v_only[2], all[2]) && same_bits(v_only[0], dq0) && same_bits(v_only[1], dk0),
           what + ": dv alone must equal dv of the full backward and leave dq, dk alone");
}

/// A head_dim without a flash instantiation runs the GEMM path under Flash too, with a (rows, seq) state.
void check_fallback(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng) {
    ctx.set_attention_kernel(cu::AttentionKernel::Flash);
    ctx.set_gemm_math(cu::GemmMath::Fp32);
    pa::AttentionShape const s{2, 21, 4, 2, 48};
    expect(cu::attention_state_cols(ctx, s) == s.seq, "attention_state_cols is seq for head_dim 48 (GEMM path)");
    pa::Index const n = pa::Index(s.batch) * s.seq, qc = pa::Index(s.heads) * s.head_dim;
    pa::Index const kc = pa::Index(s.kv_heads) * s.head_dim, rows = pa::Index(s.batch) * s.heads * s.seq;
    auto const q = random_vector(rng, n * qc), k = random_vector(rng, n * kc), v = random_vector(rng, n * kc);
    Vec out(std::size_t(n * qc)), probs(std::size_t(rows * s.seq));
    float const scale = 0.125f;
    pa::cpu::attention_forward<float>(cpu, {q.data(), n, qc}, {k.data(), n, kc}, {v.data(), n, kc}, {out.data(), n, qc},
                                      {probs.data(), rows, s.seq}, s, nullptr, scale);
    auto cq = to_device(ctx, q), ck = to_device(ctx, k), cv = to_device(ctx, v);
    cu::DeviceBuffer<float> cout(out.size()), cprobs(probs.size());
    cu::attention_forward(ctx, {cq.data(), n, qc}, {ck.data(), n, kc}, {cv.data(), n, kc}, {cout.data(), n, qc},
                          {cprobs.data(), rows, s.seq}, s, nullptr, scale);
    expect_close(to_host(ctx, cout.data(), out.size()), out, tolerance, "flash selected, head_dim 48 (GEMM) out");
    expect_close(to_host(ctx, cprobs.data(), probs.size()), probs, tolerance,
                 "flash selected, head_dim 48 (GEMM) probs");
    ctx.set_gemm_math(cu::GemmMath::Bf16);
}

/// AttentionKernel::Auto, the default, through the choice it makes: the flash kernels in Bf16 up to head_dim 64,
/// the GEMM path above it and in Fp32 and Tf32; a kernel selected by hand wins for any instantiated head_dim.
void check_auto(cu::Context& ctx) {
    auto flash = [&](int head_dim) { return cu::attention_state_cols(ctx, {1, 16, 2, 2, head_dim}) == 2; };
    expect(ctx.attention_kernel() == cu::AttentionKernel::Auto && ctx.gemm_math() == cu::GemmMath::Bf16,
           "a new context is Auto in Bf16");
    expect(flash(32) && flash(64) && !flash(80) && !flash(128) && !flash(48),
           "Auto in Bf16: flash for head_dim 32 and 64, the GEMM path for 80, 128 and 48 (not instantiated)");
    for (auto math : {cu::GemmMath::Fp32, cu::GemmMath::Tf32}) {
        ctx.set_gemm_math(math);
        expect(!flash(64), "Auto outside Bf16: the GEMM path");
    }
    ctx.set_gemm_math(cu::GemmMath::Bf16);
    ctx.set_attention_kernel(cu::AttentionKernel::Flash);
    expect(flash(128) && !flash(48), "Flash by hand: every instantiated head_dim");
    ctx.set_attention_kernel(cu::AttentionKernel::Gemm);
    expect(!flash(64), "Gemm by hand: the GEMM path");
}

}  // namespace

int main() {
    if (no_gpu("flash_attention_parity")) return 77;
    cu::Context ctx;
    pa::cpu::Context cpu;
    pa::Rng rng(97);
    check_auto(ctx);

    using S = pa::AttentionShape;
    for (auto math : {cu::GemmMath::Fp32, cu::GemmMath::Bf16}) {
        auto with = [math](Options o) {
            o.math = math;
            return o;
        };
        check_flash(ctx, cpu, rng, S{2, 37, 4, 4, 64}, with({}));                                    // MHA
        check_flash(ctx, cpu, rng, S{2, 37, 6, 2, 80}, with({.accumulate = true}));                  // GQA, 80, +=
        check_flash(ctx, cpu, rng, S{2, 37, 4, 4, 64}, with({.alibi = true}));                       // ALiBi
        check_flash(ctx, cpu, rng, S{3, 1, 4, 2, 64}, with({.alibi = true, .accumulate = true}));    // seq 1, GQA
        check_flash(ctx, cpu, rng, S{1, 70, 8, 1, 80}, with({.alibi = true}));                       // MQA, 8 heads
        check_flash(ctx, cpu, rng, S{2, 100, 4, 2, 32}, with({.alibi = true, .accumulate = true}));  // head_dim 32
        check_flash(ctx, cpu, rng, S{1, 65, 3, 1, 96}, with({.gemm_sized_state = true}));            // head_dim 96
        check_flash(ctx, cpu, rng, S{2, 70, 4, 2, 128}, with({.alibi = true, .accumulate = true}));  // head_dim 128
        check_flash(ctx, cpu, rng, S{2, 130, 4, 4, 64}, with({.gemm_sized_state = true}));  // (rows, seq) state
        check_flash(ctx, cpu, rng, S{4, 512, 16, 16, 64},
                    with({.alibi = true, .accumulate = true, .check_lse = false}));  // BLOOM-560m
        check_flash(ctx, cpu, rng, S{1, 512, 32, 32, 128},
                    with({.accumulate = true, .check_lse = false}));  // LLaMA-7B
    }
    check_fallback(ctx, cpu, rng);

    ctx.set_attention_kernel(cu::AttentionKernel::Flash);
    cu::DeviceBuffer<float> scratch(4096);
    pa::View<float const> x(scratch.data(), 8, 64);
    pa::View<float> y(scratch.data() + 1024, 8, 64), bad_state(scratch.data() + 2048, 7, 2);
    expect_error([&] { cu::attention_forward(ctx, x, x, x, y, bad_state, S{1, 8, 1, 1, 64}, nullptr, 1.0f); },
                 "flash attention state", "flash attention with a state of the wrong row count");
    return finish("flash_attention_parity");
}
