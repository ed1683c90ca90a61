/// @file backend/cuda/flash_attention_mma_tile.hpp
/// @brief The block schedules of the tensor-core flash attention kernels, which run in GemmMath::Bf16: the
/// algorithm, tiles, launch grid and saved state of flash_attention_tile.hpp, with every tile product on bf16
/// tensor cores (fp32 accumulation) instead of fp32 loops on CUDA cores. Compiles with nvcc and with plain g++,
/// so that tests/unit/flash_attention_tiles.cpp runs these schedules on the host.
///
/// A schedule calls `run.each(phase)` as in flash_attention_tile.hpp, and `run.product(op)` for a block-wide
/// tile product C (+)= A B (TileProduct) followed by a barrier. On the GPU (flash_attention.cuh) each warp
/// computes 16 x 16 tiles of C with wmma bf16 16x16x16 fragments; the host simulation sums the same bf16 values
/// in fp32.
///
/// Shared memory: the operand tiles (Q, K, V, dO, and P, dS) are bf16, rounded to nearest even when they are
/// written; the scores, dP and the accumulators (out, dq, dk, dv) are fp32, and so are the softmax statistics
/// and the row sum l (from the unrounded probabilities). The bf16 operands are those of the GEMM path in
/// GemmMath::Bf16, which packs Q, K, V and the probabilities to bf16 (attention.cuh).
/// Per key tile, the forward runs S = Q K^T, the online softmax (scores in registers; each row's max and sum
/// from 4 threads' partials), then out += P V. Backward kernel 1 runs S and dP = dO V^T twice (D_i, then
/// dQ += dS K); kernel 2 runs S^T = K Q^T, dP^T = V dO^T, dV += P^T dO and dK += dS^T Q. Each region of shared
/// memory starts on a 128-byte boundary and every leading dimension is a multiple of 16 bytes, as wmma's loads
/// and stores require.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "polyalpaca/backend/cuda/flash_attention_tile.hpp"

namespace polyalpaca::cuda::flash {

/// A bf16 value's bits (the upper half of the fp32 value's bits).
using Bf16Bits = std::uint16_t;

/// x rounded to the nearest bf16, ties to even (finite x; NaN and infinities keep their class).
POLYALPACA_HD inline Bf16Bits to_bf16_bits(float x) {
    std::uint32_t u;
#if defined(__CUDA_ARCH__)
    u = __float_as_uint(x);
#else
    std::memcpy(&u, &x, sizeof u);
#endif
    u += 0x7FFFu + ((u >> 16) & 1u);
    return Bf16Bits(u >> 16);
}

POLYALPACA_HD inline float from_bf16_bits(Bf16Bits h) {
    std::uint32_t const u = std::uint32_t(h) << 16;
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
#endif
}

/// C (m x n, fp32, row stride ldc) = A B, or C += A B when `accumulate`. A (m x k) is bf16, row-major with row
/// stride lda. B (k x n) is bf16, row-major (b[kk * ldb + j]) or, when TransposedB, stored as its transpose
/// (b[j * ldb + kk]: the keys of Q K^T). m, n and k are multiples of 16.
template <bool TransposedB>
struct TileProduct {
    Bf16Bits const* a;
    int lda;
    Bf16Bits const* b;
    int ldb;
    float* c;
    int ldc;
    int m, n, k;
    bool accumulate;
};

POLYALPACA_HD constexpr int round_up_128(int bytes) { return (bytes + 127) / 128 * 128; }

template <int D>
struct MmaGeometry {
    static_assert(D % 16 == 0, "the tensor-core kernels need head_dim % 16 == 0");
    static constexpr int rows = Geometry<D>::rows;    ///< query rows and key rows per tile (same grid as fp32)
    static constexpr int lanes = Geometry<D>::lanes;  ///< threads per row in the elementwise phases
    static constexpr int threads = lanes * rows;
    static constexpr int per_thread = rows / lanes;  ///< columns c, c + 4, ... of a (rows, rows) tile per thread
    static constexpr int cols = D / lanes;           ///< head columns c, c + 4, ... per thread
    static constexpr int ldh = D + 8;                ///< bf16 (rows, D) tiles
    static constexpr int ldp = rows + 8;             ///< bf16 (rows, rows) tiles
    static constexpr int lds = rows + 4;             ///< fp32 (rows, rows) tiles
    static constexpr int ldo = D + 4;                ///< fp32 (rows, D) accumulators
    static constexpr int head_bytes = round_up_128(rows * ldh * 2);
    static constexpr int square_bf16_bytes = round_up_128(rows * ldp * 2);
    static constexpr int square_fp32_bytes = round_up_128(rows * lds * 4);
    static constexpr int acc_bytes = round_up_128(rows * ldo * 4);
    static constexpr int partial_bytes = round_up_128(rows * lanes * 4);  ///< (rows, lanes) fp32
    static constexpr int row_bytes = round_up_128(rows * 4);              ///< (rows) fp32
    /// Shared bytes: forward Q K V, S, P, out, partials; kernel 1 Q dO K V, S dP, dS, dq, partials; kernel 2
    /// K V Q dO, S^T dP^T, P^T dS^T, dk dv, the query rows' lse and D.
    static constexpr int forward_bytes =
        3 * head_bytes + square_fp32_bytes + square_bf16_bytes + acc_bytes + partial_bytes;
    static constexpr int dq_bytes =
        4 * head_bytes + 2 * square_fp32_bytes + square_bf16_bytes + acc_bytes + partial_bytes;
    static constexpr int dkv_bytes =
        4 * head_bytes + 2 * square_fp32_bytes + 2 * square_bf16_bytes + 2 * acc_bytes + 2 * row_bytes;
};

/// Hands out consecutive regions of a block's shared memory.
struct SharedCarver {
    unsigned char* at;
    template <class T>
    POLYALPACA_HD T* take(int bytes) {
        T* region = reinterpret_cast<T*>(at);
        at += bytes;
        return region;
    }
};

/// Rounds to bf16, for copy_tile into the tensor-core kernels' operand tiles.
struct StoreBf16 {
    POLYALPACA_HD Bf16Bits operator()(float x) const { return to_bf16_bits(x); }
};

/// dst (rows, D) bf16 with row stride ldh = rows [0, valid) of fp32 src (row stride ld), zeros below.
template <int D>
POLYALPACA_HD inline void load_tile_bf16(int t, float const* src, std::int64_t ld, int valid, Bf16Bits* dst) {
    using G = MmaGeometry<D>;
    copy_tile<G::rows, D, G::threads, G::ldh>(t, src, ld, valid, dst, StoreBf16{});
}

/// Thread t's columns c, c + 4, ... of row t / 4 of an fp32 (rows, D) accumulator set to 0.
template <int D>
POLYALPACA_HD inline void zero_accumulator(int t, float* acc) {
    using G = MmaGeometry<D>;
    int const r = t / G::lanes, c = t % G::lanes;
    POLYALPACA_UNROLL
    for (int e = 0; e < G::cols; ++e) acc[r * G::ldo + c + G::lanes * e] = 0.0f;
}

// ---- forward ---------------------------------------------------------------------------------------------------

template <int D>
struct MmaForwardThread {
    float score[MmaGeometry<D>::per_thread];  ///< this key tile's scores of row r, keys c, c + 4, ...
    float m;                                  ///< running max of the row's scores
    float l;                                  ///< this thread's share of the running sum of exp(score - m)
};

/// One block: query tile of `block` (heaviest first) of head (b, h), all key tiles up to the diagonal; writes
/// the out rows and the state (lse, slope), as forward_block.
template <int D, class Block>
POLYALPACA_HD void mma_forward_block(Problem const& p, int block, unsigned char* smem, Block& run) {
    using G = MmaGeometry<D>;
    using S = MmaForwardThread<D>;
    constexpr int R = G::rows;
    QueryTile const at = query_tile(p, block, R, D);
    int const qt = at.qt, bh = at.bh, b = at.b, h = at.h, g = at.g, i0 = at.i0;
    std::int64_t const q_ld = at.q_ld, kv_ld = at.kv_ld;
    SharedCarver carve{smem};
    auto* qs = carve.take<Bf16Bits>(G::head_bytes);         // (R, D) queries
    auto* ks = carve.take<Bf16Bits>(G::head_bytes);         // (R, D) keys
    auto* vs = carve.take<Bf16Bits>(G::head_bytes);         // (R, D) values
    auto* ss = carve.take<float>(G::square_fp32_bytes);     // (R, R) q . k
    auto* ps = carve.take<Bf16Bits>(G::square_bf16_bytes);  // (R, R) exp(score - m)
    auto* os = carve.take<float>(G::acc_bytes);             // (R, D) unnormalised out
    auto* part = carve.take<float>(G::partial_bytes);       // (R, lanes) the rows' partial max, then sum
    float const slope = p.slopes ? p.slopes[h] : 0.0f;

    run.each([&](int t, S& s) {
        load_tile_bf16<D>(t, p.q + (std::int64_t(b) * p.seq + i0) * q_ld + std::int64_t(h) * D, q_ld, p.seq - i0, qs);
        zero_accumulator<D>(t, os);
        s.m = -INFINITY;
        s.l = 0.0f;
    });
    for (int kt = 0; kt <= qt; ++kt) {
        int const j0 = kt * R;
        run.each([&](int t, S&) {
            std::int64_t const base = (std::int64_t(b) * p.seq + j0) * kv_ld + std::int64_t(g) * D;
            load_tile_bf16<D>(t, p.k + base, kv_ld, p.seq - j0, ks);
            load_tile_bf16<D>(t, p.v + base, kv_ld, p.seq - j0, vs);
        });
        run.product(TileProduct<true>{qs, G::ldh, ks, G::ldh, ss, G::lds, R, R, D, false});
        run.each([&](int t, S& s) {  // the scores of row r against keys c, c + 4, ...; their max
            int const r = t / G::lanes, c = t % G::lanes;
            float tile_max = -INFINITY;
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) {
                int const j = c + G::lanes * n;
                s.score[n] = score(ss[r * G::lds + j], i0 + r, j0 + j, p.seq, p.scale, slope);
                tile_max = fmaxf(tile_max, s.score[n]);
            }
            part[t] = tile_max;  // part[r * lanes + c]
        });
        run.each([&](int t, S& s) {  // online softmax: the new max, P = exp(score - m), out and l rescaled
            int const r = t / G::lanes, c = t % G::lanes;
            float const* row = part + r * G::lanes;
            float const m = fmaxf(s.m, fmaxf(fmaxf(row[0], row[1]), fmaxf(row[2], row[3])));
            bool const visible = m != -INFINITY;  // false only for padding rows past seq
            float const alpha = visible ? expf(s.m - m) : 1.0f;
            float sum = 0.0f;
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) {
                float const pj = visible ? expf(s.score[n] - m) : 0.0f;
                sum += pj;
                ps[r * G::ldp + c + G::lanes * n] = to_bf16_bits(pj);
            }
            s.l = s.l * alpha + sum;
            POLYALPACA_UNROLL
            for (int e = 0; e < G::cols; ++e) os[r * G::ldo + c + G::lanes * e] *= alpha;
            s.m = m;
        });
        run.product(TileProduct<false>{ps, G::ldp, vs, G::ldh, os, G::ldo, R, D, R, true});
    }
    run.each([&](int t, S& s) { part[t] = s.l; });
    run.each([&](int t, S& s) {
        int const r = t / G::lanes, c = t % G::lanes, i = i0 + r;
        if (i >= p.seq) return;
        float const* row = part + r * G::lanes;
        float const l = (row[0] + row[1]) + (row[2] + row[3]);
        float const inv = 1.0f / l;
        float* orow = p.out + (std::int64_t(b) * p.seq + i) * q_ld + std::int64_t(h) * D + c;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) orow[G::lanes * e] = os[r * G::ldo + c + G::lanes * e] * inv;
        if (c == 0) {
            float* st = p.state + (std::int64_t(bh) * p.seq + i) * p.state_ld;
            st[0] = s.m + logf(l);
            st[1] = slope;
        }
    });
}

// ---- backward ----------------------------------------------------------------------------------------------

template <int D>
struct MmaDqThread {
    float lse, delta, partial;
};

/// Block of kernel 1 (one per query tile of head (b, h), heaviest first), as backward_dq_block: D_i into p.delta
/// from p.saved_out (fp32), or by pass 1 over the key tiles up to the diagonal as sum_j P_ij dP_ij; pass 2, when
/// p.dq is set, forms dS = P (dP - D) and adds scale dS K into dq.
template <int D, class Block>
POLYALPACA_HD void mma_backward_dq_block(Problem const& p, int block, unsigned char* smem, Block& run) {
    using G = MmaGeometry<D>;
    using S = MmaDqThread<D>;
    constexpr int R = G::rows;
    QueryTile const at = query_tile(p, block, R, D);
    int const qt = at.qt, bh = at.bh, b = at.b, h = at.h, g = at.g, i0 = at.i0;
    std::int64_t const q_ld = at.q_ld, kv_ld = at.kv_ld;
    SharedCarver carve{smem};
    auto* qs = carve.take<Bf16Bits>(G::head_bytes);          // (R, D) queries
    auto* dos = carve.take<Bf16Bits>(G::head_bytes);         // (R, D) output gradients
    auto* ks = carve.take<Bf16Bits>(G::head_bytes);          // (R, D) keys
    auto* vs = carve.take<Bf16Bits>(G::head_bytes);          // (R, D) values
    auto* ss = carve.take<float>(G::square_fp32_bytes);      // (R, R) q . k
    auto* dps = carve.take<float>(G::square_fp32_bytes);     // (R, R) dP = dO . v
    auto* dss = carve.take<Bf16Bits>(G::square_bf16_bytes);  // (R, R) dS
    auto* dqs = carve.take<float>(G::acc_bytes);             // (R, D) sum_j dS_ij k_j
    auto* part = carve.take<float>(G::partial_bytes);        // (R, lanes) partial sums of D_i
    float const slope = p.state[std::int64_t(bh) * p.seq * p.state_ld + 1];

    run.each([&](int t, S& s) {
        std::int64_t const base = (std::int64_t(b) * p.seq + i0) * q_ld + std::int64_t(h) * D;
        load_tile_bf16<D>(t, p.q + base, q_ld, p.seq - i0, qs);
        load_tile_bf16<D>(t, p.dout + base, q_ld, p.seq - i0, dos);
        zero_accumulator<D>(t, dqs);
        int const i = i0 + t / G::lanes;
        s.lse = i < p.seq ? p.state[(std::int64_t(bh) * p.seq + i) * p.state_ld] : 0.0f;
        s.partial = p.saved_out ? saved_out_partial<D>(p, t, b, h, i0) : 0.0f;
    });
    // Loads key tile kt and computes its S and dP.
    auto scores = [&](int kt) {
        run.each([&](int t, S&) {
            std::int64_t const base = (std::int64_t(b) * p.seq + kt * R) * kv_ld + std::int64_t(g) * D;
            load_tile_bf16<D>(t, p.k + base, kv_ld, p.seq - kt * R, ks);
            load_tile_bf16<D>(t, p.v + base, kv_ld, p.seq - kt * R, vs);
        });
        run.product(TileProduct<true>{qs, G::ldh, ks, G::ldh, ss, G::lds, R, R, D, false});
        run.product(TileProduct<true>{dos, G::ldh, vs, G::ldh, dps, G::lds, R, R, D, false});
    };
    for (int kt = 0; p.saved_out == nullptr && kt <= qt; ++kt) {  // pass 1: D_i without the forward's out
        scores(kt);
        run.each([&](int t, S& s) {
            int const r = t / G::lanes, c = t % G::lanes;
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) {
                int const j = c + G::lanes * n;
                float const prob = probability(ss[r * G::lds + j], i0 + r, kt * R + j, p.seq, p.scale, slope, s.lse);
                s.partial += prob * dps[r * G::lds + j];
            }
        });
    }
    run.each([&](int t, S& s) { part[t] = s.partial; });  // part[r * lanes + c]
    run.each([&](int t, S& s) {
        int const r = t / G::lanes, i = i0 + r;
        float const* row = part + r * G::lanes;
        s.delta = (row[0] + row[1]) + (row[2] + row[3]);
        if (t % G::lanes == 0 && i < p.seq) p.delta[std::int64_t(bh) * p.seq + i] = s.delta;
    });
    if (!p.dq) return;
    for (int kt = 0; kt <= qt; ++kt) {  // pass 2: dQ
        scores(kt);
        run.each([&](int t, S& s) {
            int const r = t / G::lanes, c = t % G::lanes;
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) {
                int const j = c + G::lanes * n;
                float const prob = probability(ss[r * G::lds + j], i0 + r, kt * R + j, p.seq, p.scale, slope, s.lse);
                dss[r * G::ldp + j] = to_bf16_bits(prob * (dps[r * G::lds + j] - s.delta));
            }
        });
        run.product(TileProduct<false>{dss, G::ldp, ks, G::ldh, dqs, G::ldo, R, D, R, true});
    }
    run.each([&](int t, S&) {
        int const r = t / G::lanes, c = t % G::lanes, i = i0 + r;
        if (i >= p.seq) return;
        float* row = p.dq + (std::int64_t(b) * p.seq + i) * q_ld + std::int64_t(h) * D + c;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) row[G::lanes * e] += p.scale * dqs[r * G::ldo + c + G::lanes * e];
    });
}

/// Kernel 2 keeps everything in shared memory; a thread's state is only a placeholder.
struct MmaDkvThread {
    float unused;
};

/// Block of kernel 2 (one per key tile of kv head (b, g), heaviest first), as backward_dkv_block: for every
/// query head of the group and every query tile from the key tile's on, recomputes P^T and dS^T (D_i from
/// kernel 1), accumulates dV = P^T dO and dK = dS^T Q, and adds dV and scale dK into dv and dk (either may be
/// null).
template <int D, class Block>
POLYALPACA_HD void mma_backward_dkv_block(Problem const& p, int block, unsigned char* smem, Block& run) {
    using G = MmaGeometry<D>;
    using S = MmaDkvThread;
    constexpr int R = G::rows;
    int const tiles = tile_count(p.seq, R), kv_total = p.batch * p.kv_heads, group = p.heads / p.kv_heads;
    int const kt = block / kv_total, bg = block % kv_total;
    int const b = bg / p.kv_heads, g = bg % p.kv_heads;
    int const j0 = kt * R;
    std::int64_t const q_ld = std::int64_t(p.heads) * D, kv_ld = std::int64_t(p.kv_heads) * D;
    SharedCarver carve{smem};
    auto* ks = carve.take<Bf16Bits>(G::head_bytes);           // (R, D) keys
    auto* vs = carve.take<Bf16Bits>(G::head_bytes);           // (R, D) values
    auto* qs = carve.take<Bf16Bits>(G::head_bytes);           // (R, D) queries
    auto* dos = carve.take<Bf16Bits>(G::head_bytes);          // (R, D) output gradients
    auto* sts = carve.take<float>(G::square_fp32_bytes);      // (R keys, R queries) k . q
    auto* dpts = carve.take<float>(G::square_fp32_bytes);     // (R keys, R queries) v . dO
    auto* pts = carve.take<Bf16Bits>(G::square_bf16_bytes);   // (R keys, R queries) P^T
    auto* dsts = carve.take<Bf16Bits>(G::square_bf16_bytes);  // (R keys, R queries) dS^T
    auto* dks = carve.take<float>(G::acc_bytes);              // (R, D) sum_i dS_ij q_i over the group's heads
    auto* dvs = carve.take<float>(G::acc_bytes);              // (R, D) sum_i P_ij dO_i
    auto* lses = carve.take<float>(G::row_bytes);             // (R) lse of the query rows
    auto* deltas = carve.take<float>(G::row_bytes);           // (R) D of the query rows
    bool const want_dk = p.dk != nullptr;

    run.each([&](int t, S&) {
        std::int64_t const base = (std::int64_t(b) * p.seq + j0) * kv_ld + std::int64_t(g) * D;
        load_tile_bf16<D>(t, p.k + base, kv_ld, p.seq - j0, ks);
        load_tile_bf16<D>(t, p.v + base, kv_ld, p.seq - j0, vs);
        zero_accumulator<D>(t, dks);
        zero_accumulator<D>(t, dvs);
    });
    for (int h = g * group; h < (g + 1) * group; ++h) {
        std::int64_t const head_row = std::int64_t(b * p.heads + h) * p.seq;  // state row of query 0
        float const slope = p.state[head_row * p.state_ld + 1];
        for (int qt = kt; qt < tiles; ++qt) {
            int const i0 = qt * R;
            run.each([&](int t, S&) {
                std::int64_t const base = (std::int64_t(b) * p.seq + i0) * q_ld + std::int64_t(h) * D;
                load_tile_bf16<D>(t, p.q + base, q_ld, p.seq - i0, qs);
                load_tile_bf16<D>(t, p.dout + base, q_ld, p.seq - i0, dos);
                load_query_stats(p, t, R, head_row + i0, i0, want_dk, lses, deltas);
            });
            run.product(TileProduct<true>{ks, G::ldh, qs, G::ldh, sts, G::lds, R, R, D, false});
            run.product(TileProduct<true>{vs, G::ldh, dos, G::ldh, dpts, G::lds, R, R, D, false});
            run.each([&](int t, S&) {  // P^T and dS^T of key row r against queries c, c + 4, ...
                int const r = t / G::lanes, c = t % G::lanes;
                POLYALPACA_UNROLL
                for (int n = 0; n < G::per_thread; ++n) {
                    int const i = c + G::lanes * n;
                    float const prob = probability(sts[r * G::lds + i], i0 + i, j0 + r, p.seq, p.scale, slope, lses[i]);
                    pts[r * G::ldp + i] = to_bf16_bits(prob);
                    dsts[r * G::ldp + i] = to_bf16_bits(prob * (dpts[r * G::lds + i] - deltas[i]));
                }
            });
            if (p.dv) run.product(TileProduct<false>{pts, G::ldp, dos, G::ldh, dvs, G::ldo, R, D, R, true});
            if (want_dk) run.product(TileProduct<false>{dsts, G::ldp, qs, G::ldh, dks, G::ldo, R, D, R, true});
        }
    }
    run.each([&](int t, S&) {
        int const r = t / G::lanes, c = t % G::lanes, j = j0 + r;
        if (j >= p.seq) return;
        std::int64_t const at = (std::int64_t(b) * p.seq + j) * kv_ld + std::int64_t(g) * D + c;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) {
            int const col = r * G::ldo + c + G::lanes * e;
            if (p.dk) p.dk[at + G::lanes * e] += p.scale * dks[col];
            if (p.dv) p.dv[at + G::lanes * e] += dvs[col];
        }
    });
}

}  // namespace polyalpaca::cuda::flash
