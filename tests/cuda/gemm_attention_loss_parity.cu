/// @file tests/cuda/gemm_attention_loss_parity.cu
/// @brief The CUDA linear (plain and GELU-fused), attention and cross-entropy ops against the CPU ops on the same
/// random inputs, in every GemmMath mode; skips (77) without a GPU.
///
/// Errors are max|cuda - cpu| / max|cpu| over each output (tests/cuda/cuda_test.cuh). Tolerances (the reasons
/// are in docs/tolerances.md): GEMM outputs 1e-5 in Fp32, 2e-3 in Tf32, 1.5e-2 in Bf16 (bf16 operands; about 4x
/// the 3.6e-3 that tests/cuda/bf16_sim/ops_error.cpp predicts); attention 2e-5 in Fp32 and 2.5e-2 in Bf16 (its
/// gradients pass through two rounded GEMMs; predicted 6.1e-3); the loss sum 1e-6 and dlogits 1e-5. Also checks
/// that the bf16 working copies of weights follow uploads, optimizer updates, zero fills and reallocation.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cuda_test.cuh"
#include "polyalpaca/backend/cpu/activation.hpp"
#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/backend/cpu/loss.hpp"
#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/backend/cuda/attention.cuh"
#include "polyalpaca/backend/cuda/gemm.cuh"
#include "polyalpaca/backend/cuda/linear_gelu.cuh"
#include "polyalpaca/backend/cuda/loss.cuh"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/layers/alibi.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using namespace polyalpaca::cuda_test;

namespace {

using Vec = std::vector<float>;

Vec random_vector(pa::Rng& rng, pa::Index n, double std = 1.0) {
    Vec v(static_cast<std::size_t>(n));
    for (auto& x : v) x = float(std * rng.normal());
    return v;
}

char const* math_name(cu::GemmMath m) {
    return m == cu::GemmMath::Fp32 ? "fp32" : m == cu::GemmMath::Tf32 ? "tf32" : "bf16";
}
double gemm_tolerance(cu::GemmMath m) {
    return m == cu::GemmMath::Fp32 ? 1e-5 : m == cu::GemmMath::Tf32 ? 2e-3 : 1.5e-2;
}
double attention_tolerance(cu::GemmMath m) {
    return m == cu::GemmMath::Fp32 ? 2e-5 : m == cu::GemmMath::Tf32 ? 4e-3 : 2.5e-2;
}

std::string label(char const* what, cu::GemmMath m, pa::Index a, pa::Index b, pa::Index c) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s [%s] (%lld, %lld, %lld)", what, math_name(m), (long long)a, (long long)b,
                  (long long)c);
    return buf;
}

/// linear_forward with and without bias, with accumulate, and linear_backward (dx, dw, db added into random
/// starting values; dw skipped so db takes the column-sum path; dx only).
void check_linear(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, cu::GemmMath math, pa::Index n, pa::Index in,
                  pa::Index out) {
    ctx.set_gemm_math(math);
    double const tol = gemm_tolerance(math);
    auto const x = random_vector(rng, n * in), w = random_vector(rng, out * in), b = random_vector(rng, out);
    auto const y0 = random_vector(rng, n * out), dy = random_vector(rng, n * out);
    auto const dx0 = random_vector(rng, n * in), dw0 = random_vector(rng, out * in), db0 = random_vector(rng, out);
    auto dx_ = to_device(ctx, x), dw_ = to_device(ctx, w), db_ = to_device(ctx, b), ddy = to_device(ctx, dy);
    pa::View<float const> vx(dx_.data(), n, in), vw(dw_.data(), out, in), vdy(ddy.data(), n, out);

    for (int variant = 0; variant < 3; ++variant) {  // 0: no bias, 1: bias, 2: bias + accumulate
        bool const bias = variant >= 1, accumulate = variant == 2;
        Vec want = y0;
        pa::cpu::linear_forward<float>(cpu, pa::View<float const>(x.data(), n, in),
                                       pa::View<float const>(w.data(), out, in), bias ? b.data() : nullptr,
                                       pa::View<float>(want.data(), n, out), accumulate);
        auto dy_ = to_device(ctx, y0);
        cu::linear_forward(ctx, vx, vw, bias ? db_.data() : nullptr, pa::View<float>(dy_.data(), n, out), accumulate);
        char const* what = variant == 0   ? "linear_forward"
                           : variant == 1 ? "linear_forward + bias"
                                          : "linear_forward + bias, accumulate";
        expect_close(to_host(ctx, dy_.data(), y0.size()), want, tol, label(what, math, n, in, out));
    }

    for (int variant = 0; variant < 3; ++variant) {  // 0: dx dw db, 1: dx db (column sums), 2: dx only
        Vec gx = dx0, gw = dw0, gb = db0;
        bool const with_w = variant == 0, with_b = variant <= 1;
        pa::cpu::linear_backward<float>(
            cpu, pa::View<float const>(x.data(), n, in), pa::View<float const>(w.data(), out, in),
            pa::View<float const>(dy.data(), n, out), pa::View<float>(gx.data(), n, in),
            with_w ? pa::View<float>(gw.data(), out, in) : pa::View<float>{}, with_b ? gb.data() : nullptr);
        auto cgx = to_device(ctx, dx0), cgw = to_device(ctx, dw0), cgb = to_device(ctx, db0);
        cu::linear_backward(ctx, vx, vw, vdy, pa::View<float>(cgx.data(), n, in),
                            with_w ? pa::View<float>(cgw.data(), out, in) : pa::View<float>{},
                            with_b ? cgb.data() : nullptr);
        char const* tag = variant == 0 ? "" : variant == 1 ? " (no dw)" : " (dx only)";
        expect_close(to_host(ctx, cgx.data(), gx.size()), gx, tol,
                     label((std::string("linear_backward dx") + tag).c_str(), math, n, in, out));
        expect_close(to_host(ctx, cgw.data(), gw.size()), gw, tol,
                     label((std::string("linear_backward dw") + tag).c_str(), math, n, in, out));
        expect_close(to_host(ctx, cgb.data(), gb.size()), gb, tol,
                     label((std::string("linear_backward db") + tag).c_str(), math, n, in, out));
    }
}

/// The plan cache: a repeated shape adds no plan, and a call's time with the plan cached.
void check_plan_cache(cu::Context& ctx, pa::Rng& rng) {
    ctx.set_gemm_math(cu::GemmMath::Bf16);
    pa::Index const n = 16, in = 64, out = 64;
    auto dx = to_device(ctx, random_vector(rng, n * in)), dw = to_device(ctx, random_vector(rng, out * in));
    cu::DeviceBuffer<float> dy(std::size_t(n * out));
    pa::View<float const> x(dx.data(), n, in), w(dw.data(), out, in);
    pa::View<float> y(dy.data(), n, out);
    cu::linear_forward(ctx, x, w, nullptr, y);
    auto const plans = cu::detail::plan_cache().size();
    auto const start = std::chrono::steady_clock::now();
    int const calls = 2000;
    for (int i = 0; i < calls; ++i) cu::linear_forward(ctx, x, w, nullptr, y);
    ctx.synchronize();
    double const us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    std::printf("  linear_forward (16, 64) x (64, 64)^T with a cached plan: %.2f us per call (%d calls)\n", us / calls,
                calls);
    expect(cu::detail::plan_cache().size() == plans, "a repeated GEMM shape must reuse its cached plan");
}

/// Which fused epilogues cuBLASLt ran and which fell back to the unfused path (informational).
void report_epilogues() {
    for (auto [epilogue, name] :
         {std::pair{CUBLASLT_EPILOGUE_BGRADB, "BGRADB"}, std::pair{CUBLASLT_EPILOGUE_GELU_AUX_BIAS, "GELU_AUX_BIAS"},
          std::pair{CUBLASLT_EPILOGUE_DGELU_BGRAD, "DGELU_BGRAD"}}) {
        int found = 0, missing = 0;
        for (auto const& [key, plan] : cu::detail::plan_cache())
            if (key[cu::detail::plan_key_epilogue] == std::int64_t(epilogue)) (plan.found ? found : missing) += 1;
        std::printf("  epilogue %-14s shapes with an algorithm: %d, without (fell back): %d\n", name, found, missing);
    }
}

/// linear_gelu_forward / linear_gelu_backward / linear_backward_dgelu against cpu linear + gelu_tanh.
void check_linear_gelu(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, cu::GemmMath math, pa::Index n,
                       pa::Index in, pa::Index hid, pa::Index out2) {
    ctx.set_gemm_math(math);
    double const tol = math == cu::GemmMath::Fp32 ? 1e-4 : gemm_tolerance(math);
    auto const x = random_vector(rng, n * in), w = random_vector(rng, hid * in, 0.2), b = random_vector(rng, hid);
    auto const dy = random_vector(rng, n * hid), w2 = random_vector(rng, out2 * hid), dz = random_vector(rng, n * out2);
    auto const dx0 = random_vector(rng, n * in), dw0 = random_vector(rng, hid * in), db0 = random_vector(rng, hid);

    Vec pre(std::size_t(n * hid)), y(pre.size());
    pa::cpu::linear_forward<float>(cpu, pa::View<float const>(x.data(), n, in),
                                   pa::View<float const>(w.data(), hid, in), b.data(),
                                   pa::View<float>(pre.data(), n, hid));
    pa::cpu::gelu_tanh_forward<float>(cpu, pa::View<float const>(pre.data(), n, hid),
                                      pa::View<float>(y.data(), n, hid));
    auto cx = to_device(ctx, x), cw = to_device(ctx, w), cb = to_device(ctx, b);
    cu::DeviceBuffer<float> cpre(pre.size()), cy(y.size());
    pa::View<float const> vx(cx.data(), n, in), vw(cw.data(), hid, in);
    cu::linear_gelu_forward(ctx, vx, vw, cb.data(), pa::View<float>(cpre.data(), n, hid),
                            pa::View<float>(cy.data(), n, hid));
    expect_close(to_host(ctx, cpre.data(), pre.size()), pre, tol, label("linear_gelu_forward pre", math, n, in, hid));
    expect_close(to_host(ctx, cy.data(), y.size()), y, tol, label("linear_gelu_forward y", math, n, in, hid));

    // Backward of y = gelu(x W^T + b), from dy, on the CPU's pre (so only the backward's error is measured).
    Vec dpre(pre.size(), 0.0f), gx = dx0, gw = dw0, gb = db0;
    pa::cpu::gelu_tanh_backward<float>(cpu, pa::View<float const>(pre.data(), n, hid),
                                       pa::View<float const>(dy.data(), n, hid), pa::View<float>(dpre.data(), n, hid));
    pa::cpu::linear_backward<float>(cpu, pa::View<float const>(x.data(), n, in),
                                    pa::View<float const>(w.data(), hid, in),
                                    pa::View<float const>(dpre.data(), n, hid), pa::View<float>(gx.data(), n, in),
                                    pa::View<float>(gw.data(), hid, in), gb.data());
    auto hpre = to_device(ctx, pre), cdy = to_device(ctx, dy);
    auto cgx = to_device(ctx, dx0), cgw = to_device(ctx, dw0), cgb = to_device(ctx, db0);
    cu::linear_gelu_backward(ctx, vx, vw, pa::View<float const>(hpre.data(), n, hid),
                             pa::View<float const>(cdy.data(), n, hid), pa::View<float>(cgx.data(), n, in),
                             pa::View<float>(cgw.data(), hid, in), cgb.data());
    expect_close(to_host(ctx, cgx.data(), gx.size()), gx, tol, label("linear_gelu_backward dx", math, n, in, hid));
    expect_close(to_host(ctx, cgw.data(), gw.size()), gw, tol, label("linear_gelu_backward dw", math, n, in, hid));
    expect_close(to_host(ctx, cgb.data(), gb.size()), gb, tol, label("linear_gelu_backward db", math, n, in, hid));

    // The DGELU epilogue: dpre = (dz W2) * gelu'(pre) written, dbias += column sums of dpre.
    Vec dh(pre.size(), 0.0f), dpre2(pre.size(), 0.0f), gb2 = db0;
    pa::cpu::linear_backward<float>(
        cpu, pa::View<float const>(pre.data(), n, hid), pa::View<float const>(w2.data(), out2, hid),
        pa::View<float const>(dz.data(), n, out2), pa::View<float>(dh.data(), n, hid), pa::View<float>{}, nullptr);
    pa::cpu::gelu_tanh_backward<float>(cpu, pa::View<float const>(pre.data(), n, hid),
                                       pa::View<float const>(dh.data(), n, hid), pa::View<float>(dpre2.data(), n, hid));
    for (pa::Index r = 0; r < n; ++r)
        for (pa::Index j = 0; j < hid; ++j) gb2[std::size_t(j)] += dpre2[std::size_t(r * hid + j)];
    auto cw2 = to_device(ctx, w2), cdz = to_device(ctx, dz), cgb2 = to_device(ctx, db0);
    cu::DeviceBuffer<float> cdpre(pre.size());
    cu::linear_backward_dgelu(ctx, pa::View<float const>(cdz.data(), n, out2),
                              pa::View<float const>(cw2.data(), out2, hid), pa::View<float const>(hpre.data(), n, hid),
                              pa::View<float>(cdpre.data(), n, hid), cgb2.data());
    expect_close(to_host(ctx, cdpre.data(), dpre2.size()), dpre2, tol,
                 label("linear_backward_dgelu dpre", math, n, out2, hid));
    expect_close(to_host(ctx, cgb2.data(), gb2.size()), gb2, tol,
                 label("linear_backward_dgelu db", math, n, out2, hid));
}

/// attention_forward / attention_backward against the CPU on one shape; the gradients start from random values
/// when `accumulate`, from 0 otherwise.
void check_attention(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, cu::GemmMath math, pa::AttentionShape s,
                     bool alibi, bool accumulate) {
    ctx.set_gemm_math(math);
    double const tol = attention_tolerance(math);
    pa::Index const n = pa::Index(s.batch) * s.seq, qc = pa::Index(s.heads) * s.head_dim;
    pa::Index const kc = pa::Index(s.kv_heads) * s.head_dim, prow = pa::Index(s.batch) * s.heads * s.seq;
    auto const q = random_vector(rng, n * qc), k = random_vector(rng, n * kc), v = random_vector(rng, n * kc);
    auto const dout = random_vector(rng, n * qc);
    double const init = accumulate ? 1.0 : 0.0;
    auto const dq0 = random_vector(rng, n * qc, init), dk0 = random_vector(rng, n * kc, init),
               dv0 = random_vector(rng, n * kc, init);
    Vec slopes;
    if (alibi)
        for (double sl : pa::alibi_slopes(s.heads)) slopes.push_back(float(sl));
    float const scale = 1.0f / std::sqrt(float(s.head_dim));

    Vec out(std::size_t(n * qc)), probs(std::size_t(prow * s.seq)), dq = dq0, dk = dk0, dv = dv0;
    pa::cpu::attention_forward<float>(cpu, {q.data(), n, qc}, {k.data(), n, kc}, {v.data(), n, kc}, {out.data(), n, qc},
                                      {probs.data(), prow, s.seq}, s, alibi ? slopes.data() : nullptr, scale);
    pa::cpu::attention_backward<float>(cpu, {dout.data(), n, qc}, {q.data(), n, qc}, {k.data(), n, kc},
                                       {v.data(), n, kc}, {probs.data(), prow, s.seq}, {dq.data(), n, qc},
                                       {dk.data(), n, kc}, {dv.data(), n, kc}, s, scale);

    auto cq = to_device(ctx, q), ck = to_device(ctx, k), cv = to_device(ctx, v), cdout = to_device(ctx, dout);
    auto cdq = to_device(ctx, dq0), cdk = to_device(ctx, dk0), cdv = to_device(ctx, dv0);
    cu::DeviceBuffer<float> cout(out.size()), cprobs(probs.size());
    cu::attention_forward(ctx, {cq.data(), n, qc}, {ck.data(), n, kc}, {cv.data(), n, kc}, {cout.data(), n, qc},
                          {cprobs.data(), prow, s.seq}, s, alibi ? slopes.data() : nullptr, scale);
    cu::attention_backward(ctx, {cdout.data(), n, qc}, {cq.data(), n, qc}, {ck.data(), n, kc}, {cv.data(), n, kc},
                           {cprobs.data(), prow, s.seq}, {cdq.data(), n, qc}, {cdk.data(), n, kc}, {cdv.data(), n, kc},
                           s, scale);
    char buf[160];
    std::snprintf(buf, sizeof buf, "attention [%s] b%d t%d h%d kv%d hd%d%s%s", math_name(math), s.batch, s.seq, s.heads,
                  s.kv_heads, s.head_dim, alibi ? " alibi" : "", accumulate ? " +=" : "");
    std::string const what = buf;
    auto const got_probs = to_host(ctx, cprobs.data(), probs.size());
    expect_close(to_host(ctx, cout.data(), out.size()), out, tol, what + " out");
    expect_close(got_probs, probs, tol, what + " probs");
    bool masked_zero = true;
    for (pa::Index r = 0; r < prow; ++r)
        for (pa::Index j = r % s.seq + 1; j < s.seq; ++j) masked_zero &= got_probs[std::size_t(r * s.seq + j)] == 0.0f;
    expect(masked_zero, what + ": probs must be exactly 0 above the diagonal");
    expect_close(to_host(ctx, cdq.data(), dq.size()), dq, tol, what + " dq");
    expect_close(to_host(ctx, cdk.data(), dk.size()), dk, tol, what + " dk");
    expect_close(to_host(ctx, cdv.data(), dv.size()), dv, tol, what + " dv");
}

/// The bf16 working copy of a weight (Bf16 math) follows every write: an upload into the same buffer, an AdamW
/// step, scaling, a zero fill and a fresh zeroed buffer at a freed address; a refresh reuses the copy's memory.
void check_bf16_weight_cache(cu::Context& ctx, pa::cpu::Context& cpu) {
    ctx.set_gemm_math(cu::GemmMath::Bf16);
    pa::Rng rng(78);
    pa::Index const n = 32, in = 64, out = 48;
    auto const x = random_vector(rng, n * in), w1 = random_vector(rng, out * in), w2 = random_vector(rng, out * in);
    auto cx = to_device(ctx, x);
    cu::DeviceBuffer<float> cy(std::size_t(n * out));
    pa::View<float const> vx(cx.data(), n, in);
    auto check = [&](float const* device_w, Vec const& w, std::string const& what) {
        Vec want(std::size_t(n * out));
        pa::cpu::linear_forward<float>(cpu, pa::View<float const>(x.data(), n, in),
                                       pa::View<float const>(w.data(), out, in), nullptr,
                                       pa::View<float>(want.data(), n, out));
        cu::linear_forward(ctx, vx, pa::View<float const>(device_w, out, in), nullptr,
                           pa::View<float>(cy.data(), n, out));
        expect_close(to_host(ctx, cy.data(), want.size()), want, gemm_tolerance(cu::GemmMath::Bf16),
                     "bf16 weight copy " + what);
    };
    float const* freed_address = nullptr;
    {
        auto cw = to_device(ctx, w1);
        check(cw.data(), w1, "first use");
        auto const copies = ctx.bf16_copy_count(), bytes = ctx.bf16_copy_bytes();
        auto version = ctx.parameter_version();
        cu::upload(ctx, w2.data(), cw.data(), w2.size());
        expect(ctx.parameter_version() > version, "an upload must count as a parameter write");
        check(cw.data(), w2, "after an upload into the same buffer");
        expect(ctx.bf16_copy_count() == copies && ctx.bf16_copy_bytes() == bytes,
               "refreshing a weight's bf16 copy must reuse it (one copy per weight)");

        Vec const grad = random_vector(rng, out * in);
        Vec host_w = w2, m(w2.size(), 0.0f), v(w2.size(), 0.0f);
        auto cg = to_device(ctx, grad), cm = to_device(ctx, m), cv = to_device(ctx, v);
        version = ctx.parameter_version();
        cu::adamw_update(ctx, cw.data(), cg.data(), cm.data(), cv.data(), out * in, {0.1, 0.9, 0.999, 1e-8, 0.0, 1});
        pa::cpu::adamw_update<float>(cpu, host_w.data(), grad.data(), m.data(), v.data(), out * in,
                                     {0.1, 0.9, 0.999, 1e-8, 0.0, 1});
        expect(ctx.parameter_version() > version, "adamw_update must count as a parameter write");
        check(cw.data(), host_w, "after adamw_update");

        cu::scale(ctx, cw.data(), out * in, 0.5f);
        for (auto& value : host_w) value *= 0.5f;
        check(cw.data(), host_w, "after scale");
        cu::fill_zero(ctx, cw.data(), w2.size());
        check(cw.data(), Vec(w2.size(), 0.0f), "after fill_zero");
        cu::upload(ctx, w1.data(), cw.data(), w1.size());
        check(cw.data(), w1, "after a second upload");
        freed_address = cw.data();
    }
    pa::Cuda::Buffer<float> zeroed(w1.size());  // often lands at the freed address, holding zeros, never uploaded
    std::printf("  a fresh zeroed weight %s the freed one's address\n",
                zeroed.data() == freed_address ? "reuses" : "does not reuse");
    check(zeroed.data(), Vec(w1.size(), 0.0f), "of a fresh zeroed buffer");
}

/// cross_entropy against the CPU: ignored rows, into a separate dlogits, in place, and without a gradient.
void check_cross_entropy(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index n, pa::Index vocab,
                         std::vector<std::int32_t> const& targets) {
    int const ignore = -100;
    float const grad_scale = 0.25f;
    auto const logits = random_vector(rng, n * vocab, 3.0);
    Vec want_grad(logits.size());
    auto const want = pa::cpu::cross_entropy<float>(cpu, pa::View<float const>(logits.data(), n, vocab), targets,
                                                    ignore, pa::View<float>(want_grad.data(), n, vocab), grad_scale);
    char buf[120];
    std::snprintf(buf, sizeof buf, "cross_entropy (%lld, %lld)", (long long)n, (long long)vocab);
    std::string const what = buf;

    auto clogits = to_device(ctx, logits);
    cu::DeviceBuffer<float> cgrad(logits.size());
    auto const got = cu::cross_entropy(ctx, pa::View<float const>(clogits.data(), n, vocab), targets, ignore,
                                       pa::View<float>(cgrad.data(), n, vocab), grad_scale);
    double const loss_error = std::abs(got.sum - want.sum) / std::max(1e-30, std::abs(want.sum));
    std::printf("  %-48s loss %.9g vs %.9g, relative error %.3e (tolerance 1e-6)\n", what.c_str(), got.sum, want.sum,
                loss_error);
    expect(loss_error <= 1e-6, what + ": loss sum differs");
    expect(got.count == want.count, what + ": count differs");
    expect_close(to_host(ctx, cgrad.data(), logits.size()), want_grad, 1e-5, what + " dlogits");

    auto const no_grad = cu::cross_entropy(ctx, pa::View<float const>(clogits.data(), n, vocab), targets, ignore,
                                           pa::View<float>{}, 1.0f);
    expect(no_grad.sum == got.sum && no_grad.count == got.count, what + ": the loss without a gradient differs");
    auto const in_place = cu::cross_entropy(ctx, pa::View<float>(clogits.data(), n, vocab), targets, ignore,
                                            pa::View<float>(clogits.data(), n, vocab), grad_scale);
    expect(in_place.sum == got.sum, what + ": the in-place loss differs");
    expect_close(to_host(ctx, clogits.data(), logits.size()), want_grad, 1e-5, what + " dlogits in place");
}

}  // namespace

int main() {
    if (no_gpu("gemm_attention_loss_parity")) return 77;
    cu::Context ctx;
    ctx.set_attention_kernel(cu::AttentionKernel::Gemm);  // this file tests the GEMM path (Auto picks flash in Bf16)
    pa::cpu::Context cpu(1);
    pa::Rng rng(77);

    for (auto math : {cu::GemmMath::Fp32, cu::GemmMath::Tf32, cu::GemmMath::Bf16}) {
        check_linear(ctx, cpu, rng, math, 37, 96, 80);
        check_linear(ctx, cpu, rng, math, 64, 256, 136);
        check_linear(ctx, cpu, rng, math, 5, 3, 7);  // odd sizes: unaligned rows, no epilogue-friendly shapes
        check_linear_gelu(ctx, cpu, rng, math, 40, 64, 96, 48);  // hid % 8 == 0: the fused epilogues
        check_linear_gelu(ctx, cpu, rng, math, 40, 64, 36, 20);  // hid % 8 != 0: the unfused fallback
    }
    check_plan_cache(ctx, rng);
    report_epilogues();

    using S = pa::AttentionShape;
    for (auto math : {cu::GemmMath::Fp32, cu::GemmMath::Bf16}) {
        check_attention(ctx, cpu, rng, math, S{2, 37, 4, 4, 64}, false, false);  // MHA
        check_attention(ctx, cpu, rng, math, S{2, 37, 6, 2, 80}, false, true);   // GQA, head_dim 80, +=
        check_attention(ctx, cpu, rng, math, S{2, 37, 4, 4, 64}, true, false);   // ALiBi
        check_attention(ctx, cpu, rng, math, S{3, 1, 4, 2, 64}, true, true);     // seq 1, GQA, ALiBi
        check_attention(ctx, cpu, rng, math, S{1, 70, 8, 1, 80}, true, false);   // MQA, ALiBi, 8 heads
    }

    check_cross_entropy(ctx, cpu, rng, 6, 1000, {3, -100, 999, 0, -100, 512});
    check_cross_entropy(ctx, cpu, rng, 3, 250880, {250879, -100, 17});
    check_cross_entropy(ctx, cpu, rng, 2, 1, {0, -100});
    check_bf16_weight_cache(ctx, cpu);

    ctx.set_gemm_math(cu::GemmMath::Bf16);
    cu::DeviceBuffer<float> scratch(64);
    pa::View<float const> x(scratch.data(), 4, 8), w_bad(scratch.data(), 2, 7);
    pa::View<float> y(scratch.data() + 32, 4, 2), logits(scratch.data(), 2, 8);
    expect_error([&] { cu::linear_forward(ctx, x, w_bad, nullptr, y); }, "In = 7", "linear_forward with In mismatch");
    std::vector<std::int32_t> const bad_targets{1, 8};
    expect_error([&] { cu::cross_entropy(ctx, logits, bad_targets, -100, pa::View<float>{}, 1.0f); }, "target 8",
                 "cross_entropy with a target outside the vocabulary");
    expect_error(
        [&] {
            cu::attention_forward(ctx, x, x, x, y, y, S{1, 4, 3, 2, 8}, nullptr, 1.0f);
        },
        "multiple of kv_heads", "attention with heads not a multiple of kv_heads");
    return finish("gemm_attention_loss_parity");
}
