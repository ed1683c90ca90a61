/// @file tests/unit/flash_attention_tiles.cpp
/// @brief The CUDA flash attention kernels' block schedules (backend/cuda/flash_attention_tile.hpp) run on the
/// host: every block of every kernel, every thread of a block phase by phase between the barriers, with the
/// kernels' tile sizes and thread-to-data indexing, against pa::cpu::attention_forward / attention_backward.
///
/// Races between the threads of one phase are caught by running the threads in both orders and requiring
/// bitwise-equal results; reads of shared memory or registers never written are caught by filling both with NaN
/// before every block. In the tensor-core schedules, every tile product is checked against what the device's wmma
/// calls require (tile sizes, leading dimensions, 32-byte aligned fragments inside shared memory, an output that
/// overlaps neither input); the wmma arithmetic itself is a plain loop here.
///
/// Errors are max|sim - cpu| / max|cpu| (as tests/cuda/cuda_test.cuh); tolerances: out 2e-6, dq/dk/dv 5e-6, the
/// saved logsumexp 1e-6 of max(1, |lse|) against a double loop (docs/tolerances.md).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/relative_error.hpp"

#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cuda/flash_attention_mma_tile.hpp"
#include "polyalpaca/backend/cuda/flash_attention_tile.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/layers/alibi.hpp"

namespace pa = polyalpaca;
namespace fl = polyalpaca::cuda::flash;

namespace {

using Vec = std::vector<float>;
constexpr float nan_fill = std::numeric_limits<float>::quiet_NaN();

/// The host stand-in for the device's block: `each` runs a phase for all threads (in either order); the
/// phase's end is the barrier. `product` (the tensor-core schedules) sums the same bf16 values in fp32, after
/// checking what the device's wmma calls require of it (below).
template <class State>
struct SimBlock {
    std::vector<State> states;
    bool reverse;
    std::span<unsigned char const> shared;  ///< the block's shared memory (tensor-core schedules)
    SimBlock(int threads, bool reverse_order, std::span<unsigned char const> shared_memory = {})
        : states(std::size_t(threads)), reverse(reverse_order), shared(shared_memory) {
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
    /// True when the `bytes` from p lie in the block's shared memory and p is `alignment`-aligned in it (the
    /// device aligns shared memory to 128 bytes; the host vector only to 16, so offsets are what count).
    bool in_shared(void const* p, std::size_t bytes, std::size_t alignment) const {
        auto const* byte = static_cast<unsigned char const*>(p);
        return !shared.empty() && byte >= shared.data() && byte + bytes <= shared.data() + shared.size() &&
               std::size_t(byte - shared.data()) % alignment == 0;
    }
    /// What flash_attention.cuh's tile_product asks of wmma: 16x16x16 tiles; leading dimensions of 16 bytes'
    /// multiples (8 bf16, 4 floats); every fragment (a at (i, kk), b at (kk, j) or its transpose, c at (i, j)) in
    /// shared memory, from a 32-byte aligned pointer. And, as the block's warps write tiles of c while others still
    /// read a and b, c must not overlap either.
    template <bool TransposedB>
    bool meets_wmma_rules(fl::TileProduct<TransposedB> const& op) const {
        if (op.m % 16 || op.n % 16 || op.k % 16 || op.lda % 8 || op.ldb % 8 || op.ldc % 4) return false;
        auto const* c_begin = reinterpret_cast<unsigned char const*>(op.c);
        auto const* c_end = reinterpret_cast<unsigned char const*>(op.c + (op.m - 1) * op.ldc + op.n);
        auto overlaps_c = [&](fl::Bf16Bits const* first, int rows, int ld, int cols) {
            auto const* begin = reinterpret_cast<unsigned char const*>(first);
            auto const* end = reinterpret_cast<unsigned char const*>(first + (rows - 1) * ld + cols);
            return begin < c_end && c_begin < end;
        };
        if (overlaps_c(op.a, op.m, op.lda, op.k) ||
            (TransposedB ? overlaps_c(op.b, op.n, op.ldb, op.k) : overlaps_c(op.b, op.k, op.ldb, op.n)))
            return false;
        auto fragment = [&](void const* first, int ld, std::size_t element) {
            return in_shared(first, (std::size_t(15) * std::size_t(ld) + 16) * element, 32);
        };
        for (int i = 0; i < op.m; i += 16)
            for (int j = 0; j < op.n; j += 16) {
                if (!fragment(op.c + i * op.ldc + j, op.ldc, sizeof(float))) return false;
                for (int kk = 0; kk < op.k; kk += 16)
                    if (!fragment(op.a + i * op.lda + kk, op.lda, sizeof(fl::Bf16Bits)) ||
                        !fragment(TransposedB ? op.b + j * op.ldb + kk : op.b + kk * op.ldb + j, op.ldb,
                                  sizeof(fl::Bf16Bits)))
                        return false;
            }
        return true;
    }
    template <bool TransposedB>
    void product(fl::TileProduct<TransposedB> const& op) {
        if (!meets_wmma_rules(op))
            FAIL("a tile product breaks a wmma rule: m n k " << op.m << ' ' << op.n << ' ' << op.k << ", lda ldb ldc "
                                                           << op.lda << ' ' << op.ldb << ' ' << op.ldc);
        for (int i = 0; i < op.m; ++i)
            for (int j = 0; j < op.n; ++j) {
                float acc = op.accumulate ? op.c[i * op.ldc + j] : 0.0f;
                for (int kk = 0; kk < op.k; ++kk) {
                    fl::Bf16Bits const b = TransposedB ? op.b[j * op.ldb + kk] : op.b[kk * op.ldb + j];
                    acc += fl::from_bf16_bits(op.a[i * op.lda + kk]) * fl::from_bf16_bits(b);
                }
                op.c[i * op.ldc + j] = acc;
            }
    }
};

/// Which kernels run: the fp32 CUDA-core ones (flash_attention_tile.hpp) or the bf16 tensor-core ones
/// (flash_attention_mma_tile.hpp).
enum class Kernels { Fp32, TensorCores };

/// A block's shared memory before it runs: all bits set, which reads as NaN in fp32 and in bf16.
void poison(std::vector<unsigned char>& smem, int bytes) { smem.assign(std::size_t(bytes), 0xFF); }

/// The launches of flash_attention.cuh on the host: forward, or backward (kernel 1 when dq or dk is wanted,
/// kernel 2 when dk or dv is), each block with NaN-filled shared memory.
template <int D>
void simulate_forward(fl::Problem const& p, bool reverse, Kernels kernels = Kernels::Fp32) {
    using G = fl::Geometry<D>;
    std::vector<unsigned char> smem;
    for (std::int64_t block = 0; block < fl::query_blocks<D>(p); ++block) {
        if (kernels == Kernels::TensorCores) {
            poison(smem, fl::MmaGeometry<D>::forward_bytes);
            SimBlock<fl::MmaForwardThread<D>> run(G::threads, reverse, smem);
            fl::mma_forward_block<D>(p, int(block), smem.data(), run);
        } else {
            poison(smem, G::forward_floats * int(sizeof(float)));
            SimBlock<fl::ForwardThread<D>> run(G::threads, reverse);
            fl::forward_block<D>(p, int(block), reinterpret_cast<float*>(smem.data()), run);
        }
    }
}

template <int D>
void simulate_backward(fl::Problem const& p, bool reverse, Kernels kernels = Kernels::Fp32) {
    using G = fl::Geometry<D>;
    using M = fl::MmaGeometry<D>;
    bool const mma = kernels == Kernels::TensorCores;
    std::vector<unsigned char> smem;
    if (p.dq || p.dk) {
        for (std::int64_t block = 0; block < fl::query_blocks<D>(p); ++block) {
            poison(smem, mma ? M::dq_bytes : G::dq_floats * int(sizeof(float)));
            if (mma) {
                SimBlock<fl::MmaDqThread<D>> run(M::threads, reverse, smem);
                fl::mma_backward_dq_block<D>(p, int(block), smem.data(), run);
            } else {
                SimBlock<fl::DqThread<D>> run(G::threads, reverse);
                fl::backward_dq_block<D>(p, int(block), reinterpret_cast<float*>(smem.data()), run);
            }
        }
    }
    if (p.dk || p.dv) {
        for (std::int64_t block = 0; block < fl::key_blocks<D>(p); ++block) {
            poison(smem, mma ? M::dkv_bytes : G::dkv_floats * int(sizeof(float)));
            if (mma) {
                SimBlock<fl::MmaDkvThread> run(M::threads, reverse, smem);
                fl::mma_backward_dkv_block<D>(p, int(block), smem.data(), run);
            } else {
                SimBlock<fl::DkvThread<D>> run(G::threads, reverse);
                fl::backward_dkv_block<D>(p, int(block), reinterpret_cast<float*>(smem.data()), run);
            }
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

/// Error bounds of one kind of kernels (docs/tolerances.md).
struct Tolerances {
    double out, grad, lse;
};
constexpr Tolerances fp32_tolerances{2e-6, 5e-6, 1e-6};
constexpr Tolerances tensor_core_tolerances{4e-3, 1e-2, 1e-6};  // measured 1.1e-3, 3.1e-3, 1.9e-7

/// v with every value rounded to bf16, as the tensor-core kernels load it.
Vec rounded_to_bf16(Vec v) {
    for (auto& x : v) x = fl::from_bf16_bits(fl::to_bf16_bits(x));
    return v;
}

/// Simulates one case, both thread orders, against the CPU attention. The tensor-core kernels are compared with
/// the CPU attention of the bf16-rounded q, k, v and dout: what remains is the rounding of P and dS to bf16.
template <int D>
Errors check_case(Case const& c, std::uint64_t seed, Kernels kernels = Kernels::Fp32) {
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
    bool const mma = kernels == Kernels::TensorCores;
    Tolerances const tol = mma ? tensor_core_tolerances : fp32_tolerances;
    // The reference's inputs: as given, or as the tensor-core kernels see them.
    Vec const rq = mma ? rounded_to_bf16(q) : q, rk = mma ? rounded_to_bf16(k) : k, rv = mma ? rounded_to_bf16(v) : v,
              rdout = mma ? rounded_to_bf16(dout) : dout;

    pa::cpu::Context cpu(1);
    Vec out(std::size_t(n * qc)), probs(std::size_t(rows * s.seq)), dq = dq0, dk = dk0, dv = dv0;
    pa::cpu::attention_forward<float>(cpu, {rq.data(), n, qc}, {rk.data(), n, kc}, {rv.data(), n, kc},
                                      {out.data(), n, qc}, {probs.data(), rows, s.seq}, s, slope_ptr, scale);
    pa::cpu::attention_backward<float>(cpu, {rdout.data(), n, qc}, {rq.data(), n, qc}, {rk.data(), n, kc},
                                       {rv.data(), n, kc}, {probs.data(), rows, s.seq}, {dq.data(), n, qc},
                                       {dk.data(), n, kc}, {dv.data(), n, kc}, s, scale);

    struct Run {
        Vec out, state, delta, dq, dk, dv;
    };
    auto simulate = [&](bool reverse, bool with_saved_out = false) {
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
        simulate_forward<D>(p, reverse, kernels);
        if (with_saved_out) p.saved_out = r.out.data();  // D_i = rowsum(dO * O): kernel 1 skips its first pass
        simulate_backward<D>(p, reverse, kernels);
        return r;
    };
    Run const fwd = simulate(false), rev = simulate(true), saved = simulate(false, true);
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
    // With the forward's out, D comes from it: the same gradients, up to rounding.
    e.dq = std::max(e.dq, relative_error(saved.dq, dq));
    e.dk = std::max(e.dk, relative_error(saved.dk, dk));
    e.dv = std::max(e.dv, relative_error(saved.dv, dv));
    CHECK(same_bits(saved.dv, fwd.dv));  // dv does not depend on D
    Vec naive_out;
    std::vector<double> lse;
    naive_forward(s, rq, rk, rv, slope_ptr, scale, 0, naive_out, lse);
    for (pa::Index r = 0; r < rows; ++r) {
        double const want = lse[std::size_t(r)];
        e.lse = std::max(e.lse, std::abs(double(fwd.state[std::size_t(r * c.state_ld)]) - want) /
                                    std::max(1.0, std::abs(want)));
        float const want_slope = c.alibi ? slopes[std::size_t((r / s.seq) % s.heads)] : 0.0f;
        CHECK(fwd.state[std::size_t(r * c.state_ld) + 1] == want_slope);
    }
    if (!std::isfinite(e.lse)) e.lse = INFINITY;
    CHECK(relative_error(fwd.out, naive_out) <= tol.out);

    INFO((mma ? "tensor cores" : "fp32") << ", shape b" << s.batch << " t" << s.seq << " h" << s.heads << " kv"
                                         << s.kv_heads << " hd" << D << (c.alibi ? " alibi" : "") << " state_ld "
                                         << c.state_ld);
    INFO("errors: out " << e.out << ", dq " << e.dq << ", dk " << e.dk << ", dv " << e.dv << ", lse " << e.lse);
    CHECK(e.out <= tol.out);
    CHECK(e.dq <= tol.grad);
    CHECK(e.dk <= tol.grad);
    CHECK(e.dv <= tol.grad);
    CHECK(e.lse <= tol.lse);
    return e;
}

template <int D>
Errors check_cases(std::vector<Case> const& cases, std::uint64_t seed, Kernels kernels = Kernels::Fp32) {
    Errors worst;
    for (auto const& c : cases) {
        auto const e = check_case<D>(c, seed++, kernels);
        worst.out = std::max(worst.out, e.out);
        worst.dq = std::max(worst.dq, e.dq);
        worst.dk = std::max(worst.dk, e.dk);
        worst.dv = std::max(worst.dv, e.dv);
        worst.lse = std::max(worst.lse, e.lse);
    }
    WARN((kernels == Kernels::TensorCores ? "tensor cores" : "fp32")
         << ", head_dim " << D << " worst errors: out " << worst.out << ", dq " << worst.dq << ", dk " << worst.dk
         << ", dv " << worst.dv << ", lse " << worst.lse);
    return worst;
}

}  // namespace

constexpr Kernels both_kernels[] = {Kernels::Fp32, Kernels::TensorCores};

TEST_CASE("flash attention blocks match the CPU attention, head_dim 64 (64-row tiles)", "[unit][flash]") {
    using S = pa::AttentionShape;
    for (Kernels kernels : both_kernels)
        check_cases<64>({{S{2, 37, 4, 4, 64}, false, 2},     // MHA, one partial tile
                         {S{2, 37, 4, 4, 64}, true, 2},      // ALiBi
                         {S{3, 1, 4, 2, 64}, true, 2},       // seq 1, GQA, ALiBi
                         {S{1, 130, 6, 2, 64}, false, 130},  // GQA, 3 tiles, the last partial; a seq-wide state
                         {S{1, 128, 2, 2, 64}, true, 2}},    // exactly 2 tiles
                        11, kernels);
}

TEST_CASE("flash attention blocks match the CPU attention, head_dim 80 (32-row tiles)", "[unit][flash]") {
    using S = pa::AttentionShape;
    for (Kernels kernels : both_kernels)
        check_cases<80>({{S{2, 37, 6, 2, 80}, false, 2},   // GQA
                         {S{1, 70, 8, 1, 80}, true, 2},    // MQA, ALiBi, 8 heads
                         {S{1, 33, 2, 2, 80}, true, 33}},  // one key past a tile
                        21, kernels);
}

TEST_CASE("flash attention blocks match the CPU attention, head_dim 32, 96 and 128", "[unit][flash]") {
    using S = pa::AttentionShape;
    for (Kernels kernels : both_kernels) {
        check_cases<32>({{S{2, 100, 4, 2, 32}, true, 2}}, 31, kernels);
        check_cases<96>({{S{1, 65, 3, 1, 96}, false, 2}}, 32, kernels);
        check_cases<128>({{S{1, 70, 4, 4, 128}, true, 2}, {S{2, 31, 4, 2, 128}, false, 2}}, 33, kernels);
    }
}

TEST_CASE("flash attention: the instantiated head dims are the default five, and a list may name fewer or none",
          "[unit][flash]") {
    namespace fl = pa::cuda::flash;
    for (int d : {32, 64, 80, 96, 128}) CHECK(fl::supported_head_dim(d));  // this file sets no list
    for (int d : {0, 16, 48, 100, 256}) CHECK_FALSE(fl::supported_head_dim(d));
    using Two = fl::HeadDims<64, 128>;
    CHECK(Two::contains(64));
    CHECK(Two::contains(128));
    CHECK_FALSE(Two::contains(32));
    CHECK_FALSE(fl::HeadDims<>::contains(64));
}

TEST_CASE("flash attention: a skipped gradient is left alone, and dk alone and dv alone are right", "[unit][flash]") {
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
    for (Kernels kernels : both_kernels) {
        bool const mma = kernels == Kernels::TensorCores;
        Vec const rq = mma ? rounded_to_bf16(q) : q, rk = mma ? rounded_to_bf16(k) : k,
                  rv = mma ? rounded_to_bf16(v) : v, rdout = mma ? rounded_to_bf16(dout) : dout;
        Vec out(std::size_t(n * qc)), probs(std::size_t(rows * s.seq)), dk(std::size_t(n * kc), 0.0f), dv = dk;
        pa::cpu::attention_forward<float>(cpu, {rq.data(), n, qc}, {rk.data(), n, kc}, {rv.data(), n, kc},
                                          {out.data(), n, qc}, {probs.data(), rows, s.seq}, s, nullptr, scale);
        pa::cpu::attention_backward<float>(cpu, {rdout.data(), n, qc}, {rq.data(), n, qc}, {rk.data(), n, kc},
                                           {rv.data(), n, kc}, {probs.data(), rows, s.seq}, {}, {dk.data(), n, kc},
                                           {dv.data(), n, kc}, s, scale);
        Vec got_out(out.size(), 0.0f), state(std::size_t(rows * 2), 0.0f), delta(std::size_t(rows), 0.0f);
        Vec got_dk(dk.size(), 0.0f), got_dv(dv.size(), 0.0f);
        auto p = fl::problem(s, q.data(), k.data(), v.data(), scale);
        p.dout = dout.data();
        p.out = got_out.data();
        p.state = state.data();
        p.delta = delta.data();
        simulate_forward<D>(p, false, kernels);
        p.dk = got_dk.data();
        simulate_backward<D>(p, false, kernels);  // dq and dv are null: kernel 1 only writes D, kernel 2 only dk
        p.dk = nullptr;
        p.dv = got_dv.data();
        simulate_backward<D>(p, false, kernels);  // only kernel 2, only dv
        double const dk_err = relative_error(got_dk, dk), dv_err = relative_error(got_dv, dv);
        double const tol = mma ? tensor_core_tolerances.grad : fp32_tolerances.grad;
        INFO((mma ? "tensor cores" : "fp32") << ": dk alone: relative error " << dk_err << ", dv alone " << dv_err);
        CHECK(dk_err <= tol);
        CHECK(dv_err <= tol);
    }
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
    for (Kernels kernels : both_kernels) {
        bool const mma = kernels == Kernels::TensorCores;
        Vec const rq = mma ? rounded_to_bf16(q) : q, rk = mma ? rounded_to_bf16(k) : k,
                  rv = mma ? rounded_to_bf16(v) : v;
        Vec got(std::size_t(n * qc), 0.0f), state(std::size_t(rows * 2), 0.0f);
        auto p = fl::problem(s, q.data(), k.data(), v.data(), scale);
        p.out = got.data();
        p.state = state.data();
        p.slopes = slopes.data();
        simulate_forward<D>(p, false, kernels);
        Vec right, shifted, no_alibi;
        std::vector<double> lse;
        naive_forward(s, rq, rk, rv, slopes.data(), scale, 0, right, lse);
        naive_forward(s, rq, rk, rv, slopes.data(), scale, 1, shifted, lse);  // a mask off by one: j <= i + 1
        naive_forward(s, rq, rk, rv, nullptr, scale, 0, no_alibi, lse);
        double const ok = relative_error(got, right), off_by_one = relative_error(got, shifted),
                     slopes_dropped = relative_error(got, no_alibi);
        INFO((mma ? "tensor cores" : "fp32") << ": against the right mask " << ok << ", a mask off by one "
                                             << off_by_one << ", without ALiBi " << slopes_dropped);
        CHECK(ok <= (mma ? tensor_core_tolerances.out : fp32_tolerances.out));
        CHECK(off_by_one > 1e-1);  // above both tolerances by at least 25x
        CHECK(slopes_dropped > 1e-1);
    }
}
