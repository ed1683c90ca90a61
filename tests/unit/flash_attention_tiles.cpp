/// @file tests/unit/flash_attention_tiles.cpp
/// @brief The CUDA flash attention kernels' block schedules (backend/cuda/flash_attention_tile.hpp) run on the
/// host: every block of every kernel, every thread of a block phase by phase between the barriers, with the
/// kernels' tile sizes and thread-to-data indexing, against pa::cpu::attention_forward / attention_backward.
///
/// Races between the threads of one phase are caught by running the threads in both orders and requiring
/// bitwise-equal results; reads of shared memory or registers never written are caught by filling both with NaN
/// before every block. Errors are max|sim - cpu| / max|cpu| (as tests/cuda/cuda_test.cuh); tolerances: out 2e-6,
/// dq/dk/dv 5e-6, the saved logsumexp 1e-6 of max(1, |lse|) against a double loop (docs/tolerances.md).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/relative_error.hpp"

#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cuda/flash_attention_tile.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/layers/alibi.hpp"

namespace pa = polyalpaca;
namespace fl = polyalpaca::cuda::flash;

namespace {

using Vec = std::vector<float>;
constexpr float nan_fill = std::numeric_limits<float>::quiet_NaN();

/// The host stand-in for the device's block: `each` runs a phase for all threads (in either order); the
/// phase's end is the barrier.
template <class State>
struct SimBlock {
    std::vector<State> states;
    bool reverse;
    SimBlock(int threads, bool reverse_order) : states(std::size_t(threads)), reverse(reverse_order) {
        static_assert(sizeof(State) % sizeof(float) == 0);
        auto* f = reinterpret_cast<float*>(states.data());
        std::fill(f, f + states.size() * sizeof(State) / sizeof(float), nan_fill);  // "uninitialised registers"
    }
    template <class F>
    void each(F&& phase) {
        int const n = int(states.size());
        for (int k = 0; k < n; ++k) {
            int const t = reverse ? n - 1 - k : k;
            phase(t, states[std::size_t(t)]);
        }
    }
};

/// The launches of flash_attention.cuh on the host: forward, or backward (kernel 1 when dq or dk is wanted,
/// kernel 2 when dk or dv is), each block with NaN-filled shared memory.
template <int D>
void simulate_forward(fl::Problem const& p, bool reverse) {
    using G = fl::Geometry<D>;
    Vec smem(std::size_t(G::forward_floats));
    for (std::int64_t block = 0; block < fl::query_blocks<D>(p); ++block) {
        std::fill(smem.begin(), smem.end(), nan_fill);
        SimBlock<fl::ForwardThread<D>> run(G::threads, reverse);
        fl::forward_block<D>(p, int(block), smem.data(), run);
    }
}

template <int D>
void simulate_backward(fl::Problem const& p, bool reverse) {
    using G = fl::Geometry<D>;
    if (p.dq || p.dk) {
        Vec smem(std::size_t(G::dq_floats));
        for (std::int64_t block = 0; block < fl::query_blocks<D>(p); ++block) {
            std::fill(smem.begin(), smem.end(), nan_fill);
            SimBlock<fl::DqThread<D>> run(G::threads, reverse);
            fl::backward_dq_block<D>(p, int(block), smem.data(), run);
        }
    }
    if (p.dk || p.dv) {
        Vec smem(std::size_t(G::dkv_floats));
        for (std::int64_t block = 0; block < fl::key_blocks<D>(p); ++block) {
            std::fill(smem.begin(), smem.end(), nan_fill);
            SimBlock<fl::DkvThread<D>> run(G::threads, reverse);
            fl::backward_dkv_block<D>(p, int(block), smem.data(), run);
        }
    }
}

Vec random_vector(pa::Rng& rng, pa::Index n, double std = 1.0) {
    Vec v(static_cast<std::size_t>(n));
    for (auto& x : v) x = float(std * rng.normal());
    return v;
}

/// Bitwise equality (NaN padding included).
bool same_bits(Vec const& a, Vec const& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using polyalpaca::test::relative_error;

/// Naive double-precision forward with a mask j <= i + mask_shift (0 is causal): out (batch*seq, heads*hd)
/// and the logsumexp of every (b, h, i) row.
void naive_forward(pa::AttentionShape const& s, Vec const& q, Vec const& k, Vec const& v, float const* slopes,
                   float scale, int mask_shift, Vec& out, std::vector<double>& lse) {
    int const group = s.heads / s.kv_heads, hd = s.head_dim;
    pa::Index const qc = pa::Index(s.heads) * hd, kc = pa::Index(s.kv_heads) * hd;
    out.assign(std::size_t(pa::Index(s.batch) * s.seq * qc), 0.0f);
    lse.assign(std::size_t(pa::Index(s.batch) * s.heads * s.seq), 0.0);
    std::vector<double> w(std::size_t(s.seq));
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h)
            for (int i = 0; i < s.seq; ++i) {
                int const last = std::min(s.seq - 1, i + mask_shift);
                double mx = -INFINITY;
                for (int j = 0; j <= last; ++j) {
                    double dot = 0;
                    for (int e = 0; e < hd; ++e)
                        dot += double(q[std::size_t((b * s.seq + i) * qc + h * hd + e)]) *
                               double(k[std::size_t((b * s.seq + j) * kc + (h / group) * hd + e)]);
                    w[std::size_t(j)] = scale * dot + (slopes ? double(slopes[h]) * j : 0.0);
                    mx = std::max(mx, w[std::size_t(j)]);
                }
                double sum = 0;
                for (int j = 0; j <= last; ++j) sum += std::exp(w[std::size_t(j)] - mx);
                lse[std::size_t((b * s.heads + h) * s.seq + i)] = mx + std::log(sum);
                for (int e = 0; e < hd; ++e) {
                    double acc = 0;
                    for (int j = 0; j <= last; ++j)
                        acc += std::exp(w[std::size_t(j)] - mx) / sum *
                               double(v[std::size_t((b * s.seq + j) * kc + (h / group) * hd + e)]);
                    out[std::size_t((b * s.seq + i) * qc + h * hd + e)] = float(acc);
                }
            }
}

struct Case {
    pa::AttentionShape shape;
    bool alibi;
    int state_ld;  ///< row stride of the saved state: 2, or seq (a probs buffer sized for the GEMM path)
};

struct Errors {
    double out = 0, dq = 0, dk = 0, dv = 0, lse = 0;
};

template <int D>
Errors check_case(Case const& c, std::uint64_t seed) {
    pa::AttentionShape const s = c.shape;
    REQUIRE(s.head_dim == D);
    pa::Rng rng(seed);
    pa::Index const n = pa::Index(s.batch) * s.seq, qc = pa::Index(s.heads) * D, kc = pa::Index(s.kv_heads) * D;
    pa::Index const rows = pa::Index(s.batch) * s.heads * s.seq;
    auto const q = random_vector(rng, n * qc), k = random_vector(rng, n * kc), v = random_vector(rng, n * kc);
    auto const dout = random_vector(rng, n * qc);
    auto const dq0 = random_vector(rng, n * qc), dk0 = random_vector(rng, n * kc), dv0 = random_vector(rng, n * kc);
    Vec slopes;
    if (c.alibi)
        for (double x : pa::alibi_slopes(s.heads)) slopes.push_back(float(x));
    float const* slope_ptr = c.alibi ? slopes.data() : nullptr;
    float const scale = 1.0f / std::sqrt(float(D));

    pa::cpu::Context cpu(1);
    Vec out(std::size_t(n * qc)), probs(std::size_t(rows * s.seq)), dq = dq0, dk = dk0, dv = dv0;
    pa::cpu::attention_forward<float>(cpu, {q.data(), n, qc}, {k.data(), n, kc}, {v.data(), n, kc},
                                      {out.data(), n, qc}, {probs.data(), rows, s.seq}, s, slope_ptr, scale);
    pa::cpu::attention_backward<float>(cpu, {dout.data(), n, qc}, {q.data(), n, qc}, {k.data(), n, kc},
                                       {v.data(), n, kc}, {probs.data(), rows, s.seq}, {dq.data(), n, qc},
                                       {dk.data(), n, kc}, {dv.data(), n, kc}, s, scale);

    struct Run {
        Vec out, state, delta, dq, dk, dv;
    };
    auto simulate = [&](bool reverse) {
        Run r{Vec(out.size(), nan_fill), Vec(std::size_t(rows * c.state_ld), nan_fill), Vec(std::size_t(rows), nan_fill),
              dq0, dk0, dv0};
        auto p = fl::problem(s, q.data(), k.data(), v.data(), scale);
        p.dout = dout.data();
        p.out = r.out.data();
        p.dq = r.dq.data();
        p.dk = r.dk.data();
        p.dv = r.dv.data();
        p.state = r.state.data();
        p.state_ld = c.state_ld;
        p.slopes = slope_ptr;
        p.delta = r.delta.data();
        simulate_forward<D>(p, reverse);
        simulate_backward<D>(p, reverse);
        return r;
    };
    Run const fwd = simulate(false), rev = simulate(true);
    CHECK(same_bits(fwd.out, rev.out));  // bitwise: no thread reads what another writes in the same phase
    CHECK(same_bits(fwd.state, rev.state));
    CHECK(same_bits(fwd.dq, rev.dq));
    CHECK(same_bits(fwd.dk, rev.dk));
    CHECK(same_bits(fwd.dv, rev.dv));

    Errors e;
    e.out = relative_error(fwd.out, out);
    e.dq = relative_error(fwd.dq, dq);
    e.dk = relative_error(fwd.dk, dk);
    e.dv = relative_error(fwd.dv, dv);
    Vec naive_out;
    std::vector<double> lse;
    naive_forward(s, q, k, v, slope_ptr, scale, 0, naive_out, lse);
    for (pa::Index r = 0; r < rows; ++r) {
        double const want = lse[std::size_t(r)];
        e.lse = std::max(e.lse, std::abs(double(fwd.state[std::size_t(r * c.state_ld)]) - want) /
                                    std::max(1.0, std::abs(want)));
        float const want_slope = c.alibi ? slopes[std::size_t((r / s.seq) % s.heads)] : 0.0f;
        CHECK(fwd.state[std::size_t(r * c.state_ld) + 1] == want_slope);
    }
    if (!std::isfinite(e.lse)) e.lse = INFINITY;
    CHECK(relative_error(fwd.out, naive_out) <= 2e-6);

    INFO("shape b" << s.batch << " t" << s.seq << " h" << s.heads << " kv" << s.kv_heads << " hd" << D
                   << (c.alibi ? " alibi" : "") << " state_ld " << c.state_ld);
    INFO("errors: out " << e.out << ", dq " << e.dq << ", dk " << e.dk << ", dv " << e.dv << ", lse " << e.lse);
    CHECK(e.out <= 2e-6);
    CHECK(e.dq <= 5e-6);
    CHECK(e.dk <= 5e-6);
    CHECK(e.dv <= 5e-6);
    CHECK(e.lse <= 1e-6);
    return e;
}

template <int D>
Errors check_cases(std::vector<Case> const& cases, std::uint64_t seed) {
    Errors worst;
    for (auto const& c : cases) {
        auto const e = check_case<D>(c, seed++);
        worst.out = std::max(worst.out, e.out);
        worst.dq = std::max(worst.dq, e.dq);
        worst.dk = std::max(worst.dk, e.dk);
        worst.dv = std::max(worst.dv, e.dv);
        worst.lse = std::max(worst.lse, e.lse);
    }
    WARN("head_dim " << D << " worst errors: out " << worst.out << ", dq " << worst.dq << ", dk " << worst.dk
                     << ", dv " << worst.dv << ", lse " << worst.lse);
    return worst;
}

}  // namespace

TEST_CASE("flash attention blocks match the CPU attention, head_dim 64 (64-row tiles)", "[unit][flash]") {
    using S = pa::AttentionShape;
    check_cases<64>({{S{2, 37, 4, 4, 64}, false, 2},     // MHA, one partial tile
                     {S{2, 37, 4, 4, 64}, true, 2},      // ALiBi
                     {S{3, 1, 4, 2, 64}, true, 2},       // seq 1, GQA, ALiBi
                     {S{1, 130, 6, 2, 64}, false, 130},  // GQA, 3 tiles, the last partial; a seq-wide state
                     {S{1, 128, 2, 2, 64}, true, 2}},    // exactly 2 tiles
                    11);
}

TEST_CASE("flash attention blocks match the CPU attention, head_dim 80 (32-row tiles)", "[unit][flash]") {
    using S = pa::AttentionShape;
    check_cases<80>({{S{2, 37, 6, 2, 80}, false, 2},     // GQA
                     {S{1, 70, 8, 1, 80}, true, 2},      // MQA, ALiBi, 8 heads
                     {S{1, 33, 2, 2, 80}, true, 33}},    // one key past a tile
                    21);
}

TEST_CASE("flash attention blocks match the CPU attention, head_dim 32, 96 and 128", "[unit][flash]") {
    using S = pa::AttentionShape;
    check_cases<32>({{S{2, 100, 4, 2, 32}, true, 2}}, 31);
    check_cases<96>({{S{1, 65, 3, 1, 96}, false, 2}}, 32);
    check_cases<128>({{S{1, 70, 4, 4, 128}, true, 2}, {S{2, 31, 4, 2, 128}, false, 2}}, 33);
}

TEST_CASE("flash attention: a skipped gradient is left alone and dk alone is right", "[unit][flash]") {
    constexpr int D = 64;
    pa::AttentionShape const s{1, 90, 4, 2, D};
    pa::Rng rng(41);
    pa::Index const n = pa::Index(s.batch) * s.seq, qc = pa::Index(s.heads) * D, kc = pa::Index(s.kv_heads) * D;
    pa::Index const rows = pa::Index(s.batch) * s.heads * s.seq;
    auto const q = random_vector(rng, n * qc), k = random_vector(rng, n * kc), v = random_vector(rng, n * kc);
    auto const dout = random_vector(rng, n * qc);
    float const scale = 0.125f;
    pa::cpu::Context cpu(1);
    CHECK(pa::cpu::attention_state_cols(cpu, s) == s.seq);  // the CPU ops save the probabilities
    Vec out(std::size_t(n * qc)), probs(std::size_t(rows * s.seq)), dk(std::size_t(n * kc), 0.0f);
    pa::cpu::attention_forward<float>(cpu, {q.data(), n, qc}, {k.data(), n, kc}, {v.data(), n, kc},
                                      {out.data(), n, qc}, {probs.data(), rows, s.seq}, s, nullptr, scale);
    pa::cpu::attention_backward<float>(cpu, {dout.data(), n, qc}, {q.data(), n, qc}, {k.data(), n, kc},
                                       {v.data(), n, kc}, {probs.data(), rows, s.seq}, {}, {dk.data(), n, kc}, {},
                                       s, scale);
    Vec got_out(out.size(), 0.0f), state(std::size_t(rows * 2), 0.0f), delta(std::size_t(rows), 0.0f), got_dk(dk.size(), 0.0f);
    auto p = fl::problem(s, q.data(), k.data(), v.data(), scale);
    p.dout = dout.data();
    p.out = got_out.data();
    p.dk = got_dk.data();
    p.state = state.data();
    p.delta = delta.data();
    simulate_forward<D>(p, false);
    simulate_backward<D>(p, false);  // dq and dv are null: kernel 1 only writes D, kernel 2 only dk
    double const err = relative_error(got_dk, dk);
    INFO("dk alone: relative error " << err);
    CHECK(err <= 5e-6);
}

TEST_CASE("flash attention's comparison catches a wrong mask or wrong slopes", "[unit][flash]") {
    constexpr int D = 64;
    pa::AttentionShape const s{1, 70, 2, 2, D};
    pa::Rng rng(51);
    pa::Index const n = pa::Index(s.batch) * s.seq, qc = pa::Index(s.heads) * D;
    pa::Index const rows = pa::Index(s.batch) * s.heads * s.seq;
    auto const q = random_vector(rng, n * qc), k = random_vector(rng, n * qc), v = random_vector(rng, n * qc);
    Vec slopes;
    for (double x : pa::alibi_slopes(s.heads)) slopes.push_back(float(x));
    float const scale = 0.125f;
    Vec got(std::size_t(n * qc), 0.0f), state(std::size_t(rows * 2), 0.0f);
    auto p = fl::problem(s, q.data(), k.data(), v.data(), scale);
    p.out = got.data();
    p.state = state.data();
    p.slopes = slopes.data();
    simulate_forward<D>(p, false);
    Vec right, shifted, no_alibi;
    std::vector<double> lse;
    naive_forward(s, q, k, v, slopes.data(), scale, 0, right, lse);
    naive_forward(s, q, k, v, slopes.data(), scale, 1, shifted, lse);  // a mask off by one: j <= i + 1
    naive_forward(s, q, k, v, nullptr, scale, 0, no_alibi, lse);
    double const ok = relative_error(got, right), off_by_one = relative_error(got, shifted),
                 slopes_dropped = relative_error(got, no_alibi);
    INFO("against the right mask " << ok << ", a mask off by one " << off_by_one << ", without ALiBi "
                                    << slopes_dropped);
    CHECK(ok <= 2e-6);
    CHECK(off_by_one > 1e-2);      // the tolerance above would catch it by four orders of magnitude
    CHECK(slopes_dropped > 1e-2);
}
