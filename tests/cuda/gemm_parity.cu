/// @file tests/cuda/gemm_parity.cu
/// @brief cuBLASLt fp32 gemm / linear_forward against a naive double-precision host loop; skips without a GPU.
///
/// Tolerance: every output may differ from the exact result by (K + 2) * 2^-24 * (sum_k |a_ik b_kj| + |bias_j| +
/// |beta c_ij|) + 1e-30, the worst-case bound of fp32 dot products of length K in any summation order (exact fp32
/// compute, no TF32). A transposed operand, a missing bias or TF32 rounding all exceed it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "polyalpaca/backend/cuda/buffer.cuh"
#include "polyalpaca/backend/cuda/gemm.cuh"
#include "polyalpaca/core/rng.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;

namespace {

int failures = 0;

void expect(bool ok, std::string const& what) {
    if (!ok) {
        ++failures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

std::vector<float> random_vector(pa::Rng& rng, pa::Index n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = float(rng.normal());
    return v;
}

/// Element (i, j) of op(m) for a row-major (rows, cols) matrix.
float at(std::vector<float> const& m, pa::Index cols, cu::Trans t, pa::Index i, pa::Index j) {
    return t == cu::Trans::No ? m[std::size_t(i * cols + j)] : m[std::size_t(j * cols + i)];
}

/// One gemm case: c = alpha op(a) op(b) + beta c + bias, checked element by element against a double loop.
/// `offset` shifts every device pointer by that many floats, so unaligned views are covered too.
void check_gemm(cu::Context& ctx, pa::Rng& rng, cu::Trans ta, cu::Trans tb, pa::Index m, pa::Index n, pa::Index k,
                bool with_bias, float alpha, float beta, pa::Index offset) {
    pa::Index const a_rows = ta == cu::Trans::No ? m : k, a_cols = ta == cu::Trans::No ? k : m;
    pa::Index const b_rows = tb == cu::Trans::No ? k : n, b_cols = tb == cu::Trans::No ? n : k;
    auto const a = random_vector(rng, a_rows * a_cols);
    auto const b = random_vector(rng, b_rows * b_cols);
    auto const bias = random_vector(rng, n);
    auto const c0 = random_vector(rng, m * n);

    cu::DeviceBuffer<float> da(std::size_t(a.size() + offset)), db(std::size_t(b.size() + offset)),
        dbias(std::size_t(n + offset)), dc(std::size_t(c0.size() + offset));
    cu::upload(ctx, a.data(), da.data() + offset, a.size());
    cu::upload(ctx, b.data(), db.data() + offset, b.size());
    cu::upload(ctx, bias.data(), dbias.data() + offset, bias.size());
    cu::upload(ctx, c0.data(), dc.data() + offset, c0.size());

    pa::View<float const> va(da.data() + offset, a_rows, a_cols), vb(db.data() + offset, b_rows, b_cols);
    pa::View<float> vc(dc.data() + offset, m, n);
    cu::gemm(ctx, ta, tb, va, vb, with_bias ? dbias.data() + offset : nullptr, vc, alpha, beta);
    std::vector<float> c(c0.size());
    cu::download(ctx, vc.data, c.data(), c.size());

    double worst = 0.0;  // largest error as a fraction of its bound
    for (pa::Index i = 0; i < m; ++i) {
        for (pa::Index j = 0; j < n; ++j) {
            double exact = 0.0, magnitude = 0.0;
            for (pa::Index p = 0; p < k; ++p) {
                double const term = double(at(a, a_cols, ta, i, p)) * double(at(b, b_cols, tb, p, j));
                exact += term;
                magnitude += std::abs(term);
            }
            double const c_old = beta * double(c0[std::size_t(i * n + j)]);
            exact = alpha * exact + c_old + (with_bias ? double(bias[std::size_t(j)]) : 0.0);
            magnitude = std::abs(alpha) * magnitude + std::abs(c_old) + (with_bias ? std::abs(bias[j]) : 0.0);
            double const bound = double(k + 2) * 0x1.0p-24 * magnitude + 1e-30;
            double const error = std::abs(double(c[std::size_t(i * n + j)]) - exact);
            worst = std::max(worst, error / bound);
        }
    }
    char what[200];
    std::snprintf(what, sizeof what,
                  "gemm op(a)%s op(b)%s (%lld x %lld) x (%lld x %lld)%s alpha=%g beta=%g offset=%lld",
                  ta == cu::Trans::Yes ? "=a^T" : "=a", tb == cu::Trans::Yes ? "=b^T" : "=b", (long long)m,
                  (long long)k, (long long)k, (long long)n, with_bias ? " + bias" : "", alpha, beta, (long long)offset);
    std::printf("%-90s worst error / bound = %.3f\n", what, worst);
    expect(worst <= 1.0, std::string(what) + ": error exceeds (K + 2) * 2^-24 * magnitude");
}

/// linear_forward (the HF layout) on one shape: y = x W^T + b, then accumulate adds a second x W^T + b.
void check_linear(cu::Context& ctx, pa::Rng& rng, pa::Index tokens, pa::Index in, pa::Index out) {
    auto const x = random_vector(rng, tokens * in);
    auto const w = random_vector(rng, out * in);
    auto const bias = random_vector(rng, out);
    cu::DeviceBuffer<float> dx(x.size()), dw(w.size()), dbias(bias.size()), dy(std::size_t(tokens * out));
    cu::upload(ctx, x.data(), dx.data(), x.size());
    cu::upload(ctx, w.data(), dw.data(), w.size());
    cu::upload(ctx, bias.data(), dbias.data(), bias.size());
    pa::View<float const> vx(dx.data(), tokens, in), vw(dw.data(), out, in);
    pa::View<float> vy(dy.data(), tokens, out);

    std::vector<float> once(std::size_t(tokens * out)), twice(once.size());
    cu::linear_forward(ctx, vx, vw, dbias.data(), vy);
    cu::download(ctx, dy.data(), once.data(), once.size());
    cu::linear_forward(ctx, vx, vw, dbias.data(), vy, /*accumulate=*/true);
    cu::download(ctx, dy.data(), twice.data(), twice.size());

    double worst = 0.0;
    for (pa::Index r = 0; r < tokens; ++r) {
        for (pa::Index o = 0; o < out; ++o) {
            double exact = bias[std::size_t(o)], magnitude = std::abs(bias[std::size_t(o)]);
            for (pa::Index i = 0; i < in; ++i) {
                double const term = double(x[std::size_t(r * in + i)]) * double(w[std::size_t(o * in + i)]);
                exact += term;
                magnitude += std::abs(term);
            }
            double const bound = double(in + 2) * 0x1.0p-24 * magnitude + 1e-30;
            std::size_t const e = std::size_t(r * out + o);
            worst = std::max(worst, std::abs(double(once[e]) - exact) / bound);
            // the accumulate call's bound covers y's old value too (2x), plus the first call's error (1x)
            worst = std::max(worst, std::abs(double(twice[e]) - 2.0 * exact) / (3.0 * bound));
        }
    }
    char what[120];
    std::snprintf(what, sizeof what, "linear_forward x (%lld, %lld) w (%lld, %lld) + bias, then accumulate",
                  (long long)tokens, (long long)in, (long long)out, (long long)in);
    std::printf("%-90s worst error / bound = %.3f\n", what, worst);
    expect(worst <= 1.0, std::string(what) + ": error exceeds (In + 2) * 2^-24 * magnitude");
}

template <class F>
void expect_error(F&& call, char const* must_mention, std::string const& what) {
    try {
        call();
    } catch (pa::Error const& e) {
        expect(std::string(e.what()).find(must_mention) != std::string::npos,
               what + ": the message '" + e.what() + "' does not mention '" + must_mention + "'");
        return;
    }
    expect(false, what + ": no polyalpaca::Error was thrown");
}

}  // namespace

int main() {
    if (cu::device_count() == 0) {
        std::puts(
            "SKIPPED: no CUDA device present (cudaGetDeviceCount found none); the cuda parity tests need an "
            "NVIDIA GPU");
        return 77;
    }
    cu::Context ctx;
    ctx.set_gemm_math(cu::GemmMath::Fp32);  // the bounds below assume exact fp32 products
    pa::Rng rng(2024);

    for (auto ta : {cu::Trans::No, cu::Trans::Yes}) {
        for (auto tb : {cu::Trans::No, cu::Trans::Yes}) {
            check_gemm(ctx, rng, ta, tb, 3, 7, 5, false, 1.0f, 0.0f, 0);
            check_gemm(ctx, rng, ta, tb, 33, 65, 17, true, 1.0f, 0.0f, 0);
            check_gemm(ctx, rng, ta, tb, 40, 24, 96, true, 0.5f, 1.0f, 1);  // unaligned pointers, accumulate
        }
    }
    check_gemm(ctx, rng, cu::Trans::No, cu::Trans::Yes, 256, 384, 1024, true, 1.0f, 0.0f, 0);
    check_linear(ctx, rng, 1, 1, 1);
    check_linear(ctx, rng, 64, 256, 96);
    check_linear(ctx, rng, 130, 200, 3);

    cu::DeviceBuffer<float> scratch(64);
    pa::View<float const> x(scratch.data(), 4, 8), w(scratch.data(), 2, 8), w_bad(scratch.data(), 2, 7);
    pa::View<float> y(scratch.data() + 32, 4, 2), y_bad(scratch.data() + 32, 4, 3);
    expect_error([&] { cu::linear_forward(ctx, x, w_bad, nullptr, y); }, "In = 7", "linear_forward with In mismatch");
    expect_error([&] { cu::linear_forward(ctx, x, w, nullptr, y_bad); }, "y", "linear_forward with a wrong y");
    expect_error([&] { cu::gemm(ctx, cu::Trans::No, cu::Trans::No, x, w, nullptr, y); }, "inner dimensions",
                 "gemm with mismatched inner dimensions");
    expect_error([&] { cu::Context other(cu::device_count()); }, "was requested", "Context on a missing device");

    if (failures > 0) {
        std::printf("%d check(s) failed\n", failures);
        return 1;
    }
    std::puts("all cuBLASLt GEMM parity checks passed");
    return 0;
}
