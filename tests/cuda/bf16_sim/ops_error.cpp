/// @file tests/cuda/bf16_sim/ops_error.cpp
/// @brief Predicts, on the CPU, the errors tests/cuda/gemm_attention_loss_parity.cu measures for the CUDA linear,
/// GELU-linear and attention ops in each GemmMath mode: the same shapes, seed and order of random draws; the
/// GEMM operands rounded as the GPU rounds them (bf16 or tf32, round to nearest even), products accumulated in
/// fp32, compared with the fp32 CPU ops by max|sim - cpu| / max|cpu|. Prints the worst error per check and mode.
///
/// Build and run (not part of the CTest suite; its output is quoted in docs/tolerances.md):
///   g++ -O2 -std=c++20 -fopenmp -DEIGEN_USE_BLAS -I include -isystem /usr/include/eigen3 \
///       tests/cuda/bf16_sim/ops_error.cpp -o /tmp/ops_error -lopenblas && /tmp/ops_error
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "polyalpaca/backend/cpu/activation.hpp"
#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/layers/alibi.hpp"

namespace pa = polyalpaca;
using Vec = std::vector<float>;

namespace {

enum class Mode { Fp32, Tf32, Bf16 };
char const* mode_name(Mode m) { return m == Mode::Fp32 ? "fp32" : m == Mode::Tf32 ? "tf32" : "bf16"; }

/// x rounded to nearest even at `drop` low mantissa bits (16: bf16 as __float2bfloat16_rn, 13: tf32).
float round_bits(float x, int drop) {
    if (!std::isfinite(x)) return x;
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    std::uint32_t const half = (1u << (drop - 1)) - 1, lsb = (u >> drop) & 1u;
    u = (u + half + lsb) & ~((1u << drop) - 1u);
    std::memcpy(&x, &u, 4);
    return x;
}
float rnd(Mode m, float x) { return m == Mode::Fp32 ? x : round_bits(x, m == Mode::Bf16 ? 16 : 13); }
Vec rnd(Mode m, Vec v) {
    for (auto& x : v) x = rnd(m, x);
    return v;
}

Vec random_vector(pa::Rng& rng, pa::Index n, double std = 1.0) {
    Vec v(static_cast<std::size_t>(n));
    for (auto& x : v) x = float(std * rng.normal());
    return v;
}

double relative_error(Vec const& a, Vec const& b) {
    double diff = 0, scale = 1e-30;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return diff / scale;
}

std::map<std::string, double> worst;  // "check [mode]" -> worst error
void record(std::string const& check, Mode m, Vec const& sim, Vec const& ref) {
    double const e = relative_error(sim, ref);
    auto& w = worst[check + " [" + mode_name(m) + "]"];
    w = std::max(w, e);
}

/// db += column sums of g (N, Out).
void add_column_sums(Vec const& g, pa::Index n, pa::Index out, Vec& db) {
    for (pa::Index j = 0; j < out; ++j) {
        float s = 0;
        for (pa::Index i = 0; i < n; ++i) s += g[std::size_t(i * out + j)];
        db[std::size_t(j)] += s;
    }
}

/// The simulated CUDA linear_backward: rounded operands; db from the rounded dy when the BGRADB epilogue (dw
/// and db both wanted) reads it, from fp32 dy otherwise.
void sim_linear_backward(pa::cpu::Context& cpu, Mode m, Vec const& x, Vec const& w, Vec const& dy, pa::Index n,
                         pa::Index in, pa::Index out, Vec& dx, Vec* dw, Vec* db) {
    Vec const rx = rnd(m, x), rw = rnd(m, w), rdy = rnd(m, dy);
    pa::cpu::linear_backward<float>(cpu, {rx.data(), n, in}, {rw.data(), out, in}, {rdy.data(), n, out},
                                    {dx.data(), n, in}, dw ? pa::View<float>(dw->data(), out, in) : pa::View<float>{},
                                    nullptr);
    if (db) add_column_sums(dw ? rdy : dy, n, out, *db);
}

void check_linear(pa::cpu::Context& cpu, pa::Rng& rng, Mode m, pa::Index n, pa::Index in, pa::Index out) {
    auto const x = random_vector(rng, n * in), w = random_vector(rng, out * in), b = random_vector(rng, out);
    auto const y0 = random_vector(rng, n * out), dy = random_vector(rng, n * out);
    auto const dx0 = random_vector(rng, n * in), dw0 = random_vector(rng, out * in), db0 = random_vector(rng, out);
    Vec const rx = rnd(m, x), rw = rnd(m, w);
    for (int variant = 0; variant < 3; ++variant) {
        bool const bias = variant >= 1, accumulate = variant == 2;
        Vec want = y0, got = y0;
        pa::cpu::linear_forward<float>(cpu, {x.data(), n, in}, {w.data(), out, in}, bias ? b.data() : nullptr,
                                       {want.data(), n, out}, accumulate);
        pa::cpu::linear_forward<float>(cpu, {rx.data(), n, in}, {rw.data(), out, in}, bias ? b.data() : nullptr,
                                       {got.data(), n, out}, accumulate);
        record("linear forward", m, got, want);
    }
    for (int variant = 0; variant < 3; ++variant) {
        bool const with_w = variant == 0, with_b = variant <= 1;
        Vec gx = dx0, gw = dw0, gb = db0, sx = dx0, sw = dw0, sb = db0;
        pa::cpu::linear_backward<float>(
            cpu, {x.data(), n, in}, {w.data(), out, in}, {dy.data(), n, out}, {gx.data(), n, in},
            with_w ? pa::View<float>(gw.data(), out, in) : pa::View<float>{}, with_b ? gb.data() : nullptr);
        sim_linear_backward(cpu, m, x, w, dy, n, in, out, sx, with_w ? &sw : nullptr, with_b ? &sb : nullptr);
        record("linear backward dx", m, sx, gx);
        record("linear backward dw", m, sw, gw);
        record("linear backward db", m, sb, gb);
    }
}

float gelu(float x) { return 0.5f * x * (1.0f + std::tanh(0.79788456f * x * (1.0f + 0.044715f * x * x))); }

void check_linear_gelu(pa::cpu::Context& cpu, pa::Rng& rng, Mode m, pa::Index n, pa::Index in, pa::Index hid,
                       pa::Index out2) {
    auto const x = random_vector(rng, n * in), w = random_vector(rng, hid * in, 0.2), b = random_vector(rng, hid);
    auto const dy = random_vector(rng, n * hid), w2 = random_vector(rng, out2 * hid), dz = random_vector(rng, n * out2);
    auto const dx0 = random_vector(rng, n * in), dw0 = random_vector(rng, hid * in), db0 = random_vector(rng, hid);
    Vec pre(std::size_t(n * hid)), y(pre.size()), spre(pre.size()), sy(pre.size());
    pa::cpu::linear_forward<float>(cpu, {x.data(), n, in}, {w.data(), hid, in}, b.data(), {pre.data(), n, hid});
    pa::cpu::gelu_tanh_forward<float>(cpu, {pre.data(), n, hid}, {y.data(), n, hid});
    Vec const rx = rnd(m, x), rw = rnd(m, w);
    pa::cpu::linear_forward<float>(cpu, {rx.data(), n, in}, {rw.data(), hid, in}, b.data(), {spre.data(), n, hid});
    for (std::size_t i = 0; i < spre.size(); ++i) sy[i] = gelu(spre[i]);
    record("linear_gelu forward pre/y", m, spre, pre);
    record("linear_gelu forward pre/y", m, sy, y);

    Vec dpre(pre.size(), 0.0f), gx = dx0, gw = dw0, gb = db0, sx = dx0, sw = dw0, sb = db0;
    pa::cpu::gelu_tanh_backward<float>(cpu, {pre.data(), n, hid}, {dy.data(), n, hid}, {dpre.data(), n, hid});
    pa::cpu::linear_backward<float>(cpu, {x.data(), n, in}, {w.data(), hid, in}, {dpre.data(), n, hid},
                                    {gx.data(), n, in}, {gw.data(), hid, in}, gb.data());
    sim_linear_backward(cpu, m, x, w, dpre, n, in, hid, sx, &sw, &sb);
    record("linear_gelu backward dx/dw/db", m, sx, gx);
    record("linear_gelu backward dx/dw/db", m, sw, gw);
    record("linear_gelu backward dx/dw/db", m, sb, gb);

    Vec dh(pre.size(), 0.0f), dpre2(pre.size(), 0.0f), gb2 = db0;
    pa::cpu::linear_backward<float>(cpu, {pre.data(), n, hid}, {w2.data(), out2, hid}, {dz.data(), n, out2},
                                    {dh.data(), n, hid}, pa::View<float>{}, nullptr);
    pa::cpu::gelu_tanh_backward<float>(cpu, {pre.data(), n, hid}, {dh.data(), n, hid}, {dpre2.data(), n, hid});
    add_column_sums(dpre2, n, hid, gb2);
    Vec sdh(pre.size(), 0.0f), sdpre(pre.size(), 0.0f), sb2 = db0;
    Vec const rdz = rnd(m, dz), rw2 = rnd(m, w2);
    pa::cpu::linear_backward<float>(cpu, {pre.data(), n, hid}, {rw2.data(), out2, hid}, {rdz.data(), n, out2},
                                    {sdh.data(), n, hid}, pa::View<float>{}, nullptr);
    pa::cpu::gelu_tanh_backward<float>(cpu, {pre.data(), n, hid}, {sdh.data(), n, hid}, {sdpre.data(), n, hid});
    add_column_sums(sdpre, n, hid, sb2);
    record("linear_backward_dgelu dpre/db", m, sdpre, dpre2);
    record("linear_backward_dgelu dpre/db", m, sb2, gb2);
}

/// The CUDA attention with its GEMM operands rounded: scores from rounded q, k; out from rounded P, v; dV from
/// rounded P, dO; dP from rounded dO, v; dS (fp32 from the simulated P and dP) rounded for dQ and dK.
void sim_attention(Mode m, Vec const& q, Vec const& k, Vec const& v, Vec const& dout, pa::AttentionShape s,
                   Vec const& slopes, float scale, Vec& out, Vec& probs, Vec& dq, Vec& dk, Vec& dv) {
    int const hd = s.head_dim, group = s.heads / s.kv_heads, T = s.seq;
    pa::Index const qc = pa::Index(s.heads) * hd, kc = pa::Index(s.kv_heads) * hd;
    Vec const rq = rnd(m, q), rk = rnd(m, k), rv = rnd(m, v), rdo = rnd(m, dout);
    auto at = [&](Vec const& a, pa::Index cols, int b, int t, int head, int e) -> float {
        return a[std::size_t((pa::Index(b) * T + t) * cols + pa::Index(head) * hd + e)];
    };
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h) {
            int const g = h / group;
            float* P = probs.data() + (pa::Index(b) * s.heads + h) * T * T;
            for (int i = 0; i < T; ++i) {
                float mx = -INFINITY;
                for (int j = 0; j <= i; ++j) {
                    float acc = 0;
                    for (int e = 0; e < hd; ++e) acc += at(rq, qc, b, i, h, e) * at(rk, kc, b, j, g, e);
                    float const sc = scale * acc + (slopes.empty() ? 0.0f : slopes[std::size_t(h)] * float(j));
                    P[i * T + j] = sc;
                    mx = std::max(mx, sc);
                }
                float sum = 0;
                for (int j = 0; j <= i; ++j) sum += (P[i * T + j] = std::exp(P[i * T + j] - mx));
                for (int j = 0; j < T; ++j) P[i * T + j] = j <= i ? P[i * T + j] / sum : 0.0f;
            }
            std::vector<float> dS(std::size_t(T) * T, 0.0f);
            for (int i = 0; i < T; ++i) {
                for (int e = 0; e < hd; ++e) {
                    float acc = 0;
                    for (int j = 0; j < T; ++j) acc += rnd(m, P[i * T + j]) * at(rv, kc, b, j, g, e);
                    out[std::size_t((pa::Index(b) * T + i) * qc + pa::Index(h) * hd + e)] = acc;
                }
                float dot = 0;
                std::vector<float> dP(std::size_t(T), 0.0f);
                for (int j = 0; j < T; ++j) {
                    float acc = 0;
                    for (int e = 0; e < hd; ++e) acc += at(rdo, qc, b, i, h, e) * at(rv, kc, b, j, g, e);
                    dP[std::size_t(j)] = acc;
                    if (j <= i) dot += P[i * T + j] * acc;
                }
                for (int j = 0; j < T; ++j)
                    dS[std::size_t(i * T + j)] = j <= i ? scale * P[i * T + j] * (dP[std::size_t(j)] - dot) : 0.0f;
            }
            for (int j = 0; j < T; ++j)
                for (int e = 0; e < hd; ++e) {
                    float accv = 0, acck = 0;
                    for (int i = 0; i < T; ++i) {
                        accv += rnd(m, P[i * T + j]) * at(rdo, qc, b, i, h, e);
                        acck += rnd(m, dS[std::size_t(i * T + j)]) * at(rq, qc, b, i, h, e);
                    }
                    dv[std::size_t((pa::Index(b) * T + j) * kc + pa::Index(g) * hd + e)] += accv;
                    dk[std::size_t((pa::Index(b) * T + j) * kc + pa::Index(g) * hd + e)] += acck;
                }
            for (int i = 0; i < T; ++i)
                for (int e = 0; e < hd; ++e) {
                    float acc = 0;
                    for (int j = 0; j < T; ++j) acc += rnd(m, dS[std::size_t(i * T + j)]) * at(rk, kc, b, j, g, e);
                    dq[std::size_t((pa::Index(b) * T + i) * qc + pa::Index(h) * hd + e)] += acc;
                }
        }
}

void check_attention(pa::cpu::Context& cpu, pa::Rng& rng, Mode m, pa::AttentionShape s, bool alibi, bool accumulate) {
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
    Vec sout(out.size()), sprobs(probs.size()), sdq = dq0, sdk = dk0, sdv = dv0;
    sim_attention(m, q, k, v, dout, s, slopes, scale, sout, sprobs, sdq, sdk, sdv);
    record("attention out", m, sout, out);
    record("attention probs", m, sprobs, probs);
    record("attention dq", m, sdq, dq);
    record("attention dk", m, sdk, dk);
    record("attention dv", m, sdv, dv);
}

}  // namespace

int main() {
    pa::cpu::Context cpu(1);
    pa::Rng rng(77);  // the order of draws below is gemm_attention_loss_parity.cu's
    for (auto m : {Mode::Fp32, Mode::Tf32, Mode::Bf16}) {
        check_linear(cpu, rng, m, 37, 96, 80);
        check_linear(cpu, rng, m, 64, 256, 136);
        check_linear(cpu, rng, m, 5, 3, 7);
        check_linear_gelu(cpu, rng, m, 40, 64, 96, 48);
        check_linear_gelu(cpu, rng, m, 40, 64, 36, 20);
    }
    (void)random_vector(rng, 16 * 64), (void)random_vector(rng, 64 * 64);  // check_plan_cache's x and w
    using S = pa::AttentionShape;
    for (auto m : {Mode::Fp32, Mode::Bf16}) {
        check_attention(cpu, rng, m, S{2, 37, 4, 4, 64}, false, false);
        check_attention(cpu, rng, m, S{2, 37, 6, 2, 80}, false, true);
        check_attention(cpu, rng, m, S{2, 37, 4, 4, 64}, true, false);
        check_attention(cpu, rng, m, S{3, 1, 4, 2, 64}, true, true);
        check_attention(cpu, rng, m, S{1, 70, 8, 1, 80}, true, false);
    }
    for (auto const& [check, error] : worst) std::printf("%-44s worst simulated error %.2e\n", check.c_str(), error);
    return 0;
}
