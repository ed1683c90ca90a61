/// @file backend/cuda/flash_attention_tile.hpp
/// @brief The whole per-block work of the flash attention kernels (backend/cuda/flash_attention.cuh), written as
/// per-thread phases between block barriers, so that the same code runs on the GPU and, looped over the threads
/// of a block on the host, in tests/unit/flash_attention_tiles.cpp. Compiles with nvcc and with plain g++.
///
/// A block schedule (forward_block, backward_dq_block, backward_dkv_block) calls `run.each(phase)`; a phase is
/// `(int t, State& s)` for thread t and its registers s. On the GPU, DeviceBlock calls it for threadIdx.x and
/// then __syncthreads(); the host simulation calls it for every t of the block in turn. So a phase may read
/// shared memory written in an EARLIER phase by any thread, and only what it writes itself otherwise.
///
/// Geometry (Geometry<D>): tiles of `rows` query rows and `rows` key rows (64 for head_dim <= 64, else 32, so the
/// backward's shared memory fits 1 to 2 blocks per SM); 4 threads per row: thread t owns row t / 4 and, with
/// c = t % 4, the keys (or queries) c, c + 4, ... of a tile and the head columns c, c + 4, ... (interleaved, so
/// the 4 threads of a row read 4 consecutive banks). Shared tiles are (rows, D + 1): the padding column puts the
/// 8 rows a warp reads at once in 8 different banks.
#pragma once

#include <cmath>
#include <cstdint>

#include "polyalpaca/backend/op_types.hpp"

#if defined(__CUDACC__)
#define POLYALPACA_HD __host__ __device__
#define POLYALPACA_UNROLL _Pragma("unroll")
#else
#define POLYALPACA_HD
#define POLYALPACA_UNROLL
#endif

namespace polyalpaca::cuda::flash {

/// The head dims the kernels are compiled for. Each adds nvcc time to every translation unit that includes the
/// kernels (two architectures, both kernel sets; docs/backend_ops.md), so a program that knows its models may name
/// only theirs, e.g. -DPOLYALPACA_FLASH_HEAD_DIMS=64\,128 (nvcc splits -D values at unescaped commas), or none with
/// -DPOLYALPACA_FLASH_HEAD_DIMS= . Every translation unit of one program must see the same list. Each must be a
/// multiple of 16 (the tensor-core tiles, a static_assert) whose tiles fit shared memory (flash::fits_shared, a
/// static_assert); 128 is the largest tested.
#ifndef POLYALPACA_FLASH_HEAD_DIMS
#define POLYALPACA_FLASH_HEAD_DIMS 32, 64, 80, 96, 128
#endif

template <int... Ds>
struct HeadDims {
    static constexpr bool contains(int d) { return ((d == Ds) || ... || false); }
};
using InstantiatedHeadDims = HeadDims<POLYALPACA_FLASH_HEAD_DIMS>;

/// True when the kernels are instantiated for head dim d; any other runs the GEMM path.
constexpr bool supported_head_dim(int d) { return InstantiatedHeadDims::contains(d); }

/// Floats per row of the saved state: [logsumexp of the row's scores, the row's ALiBi slope (0 without)]. The
/// slope is kept because attention_backward receives no slopes and must recompute the scores.
inline constexpr int state_cols = 2;

template <int D>
struct Geometry {
    static_assert(D % 4 == 0, "head_dim must be a multiple of 4");
    static constexpr int rows = D <= 64 ? 64 : 32;  ///< query rows and key rows per tile
    static constexpr int lanes = 4;                 ///< threads per row
    static constexpr int threads = lanes * rows;
    static constexpr int per_thread = rows / lanes;  ///< keys (or queries) of a tile per thread
    static constexpr int cols = D / lanes;           ///< head columns per thread
    static constexpr int ld = D + 1;                 ///< row stride of the (rows, D) shared tiles
    static constexpr int sld = rows + 1;             ///< row stride of the (rows, rows) shared tiles
    static constexpr int tile = rows * ld;
    static constexpr int square = rows * sld;
    /// Shared floats of each kernel: forward Q K V + scores; dQ Q dO K V + dS + row partials; dK/dV K V Q dO +
    /// P + dS + the rows' lse and D.
    static constexpr int forward_floats = 3 * tile + square;
    static constexpr int dq_floats = 4 * tile + square + lanes * rows;
    static constexpr int dkv_floats = 4 * tile + 2 * square + 2 * rows;
};

/// Everything a kernel reads and writes; device pointers on the GPU, host pointers in the simulation.
/// q, dout, out, dq (batch*seq, heads*D); k, v, dk, dv (batch*seq, kv_heads*D); state (batch*heads*seq,
/// state_ld) with state_ld >= state_cols; delta (batch*heads*seq) = rowsum(dO * O) per query row.
struct Problem {
    float const* q = nullptr;
    float const* k = nullptr;
    float const* v = nullptr;
    float const* dout = nullptr;
    float* out = nullptr;
    /// backward only: the forward's out, or nullptr. With it, kernel 1 takes D_i = rowsum(dO_i * O_i) from it and
    /// skips its first pass over the key tiles.
    float const* saved_out = nullptr;
    float* dq = nullptr;
    float* dk = nullptr;
    float* dv = nullptr;
    float* state = nullptr;
    std::int64_t state_ld = state_cols;
    float const* slopes = nullptr;  ///< forward only: `heads` slopes or nullptr
    float* delta = nullptr;
    int batch = 0, seq = 0, heads = 0, kv_heads = 0;
    float scale = 1.0f;
};

/// A Problem over q, k, v of shape s; the caller points the outputs and the saved state.
inline Problem problem(AttentionShape const& s, float const* q, float const* k, float const* v, float scale) {
    Problem p;
    p.q = q;
    p.k = k;
    p.v = v;
    p.batch = s.batch;
    p.seq = s.seq;
    p.heads = s.heads;
    p.kv_heads = s.kv_heads;
    p.scale = scale;
    return p;
}

POLYALPACA_HD constexpr int tile_count(int seq, int rows) { return (seq + rows - 1) / rows; }

/// What a block of the forward or of backward kernel 1 works on: query tile qt (blocks run the last, heaviest,
/// tiles first) of head h of sequence b (bh = b * heads + h), whose keys and values are kv head g; its rows start
/// at i0. q_ld and kv_ld are the row strides of q (and out, dout, dq) and of k (and v, dk, dv).
struct QueryTile {
    int qt, bh, b, h, g, i0;
    std::int64_t q_ld, kv_ld;
};

POLYALPACA_HD inline QueryTile query_tile(Problem const& p, int block, int rows, int head_dim) {
    int const heads_total = p.batch * p.heads;
    QueryTile at;
    at.qt = tile_count(p.seq, rows) - 1 - block / heads_total;
    at.bh = block % heads_total;
    at.b = at.bh / p.heads;
    at.h = at.bh % p.heads;
    at.g = at.h / (p.heads / p.kv_heads);
    at.i0 = at.qt * rows;
    at.q_ld = std::int64_t(p.heads) * head_dim;
    at.kv_ld = std::int64_t(p.kv_heads) * head_dim;
    return at;
}

/// dst (Rows, Cols) with row stride DstLd = src rows [0, valid) (row stride ld), zeros below, each value passed
/// through `store`: a block-wide cooperative copy by Threads threads (thread t takes elements t, t + Threads, ...).
template <int Rows, int Cols, int Threads, int DstLd, class Dst, class Store>
POLYALPACA_HD inline void copy_tile(int t, float const* src, std::int64_t ld, int valid, Dst* dst, Store store) {
    for (int idx = t; idx < Rows * Cols; idx += Threads) {
        int const r = idx / Cols, col = idx % Cols;
        dst[r * DstLd + col] = store(r < valid ? src[std::int64_t(r) * ld + col] : 0.0f);
    }
}

/// The identity, for copy_tile into fp32 tiles.
struct StoreFp32 {
    POLYALPACA_HD float operator()(float x) const { return x; }
};

/// dst (rows, D + 1) = src rows [0, valid) (row stride ld), zeros below.
template <int D>
POLYALPACA_HD inline void load_tile(int t, float const* src, std::int64_t ld, int valid, float* dst) {
    using G = Geometry<D>;
    copy_tile<G::rows, D, G::threads, G::ld>(t, src, ld, valid, dst, StoreFp32{});
}

/// The scaled, ALiBi-shifted, masked score of query i against key j: -inf for j > i or j >= seq.
POLYALPACA_HD inline float score(float dot, int i, int j, int seq, float scale, float slope) {
    return (j <= i && j < seq) ? scale * dot + slope * float(j) : -INFINITY;
}

// ---- forward ---------------------------------------------------------------------------------------------------

template <int D>
struct ForwardThread {
    float acc[Geometry<D>::cols];  ///< unnormalised output, columns c, c + 4, ...
    float m;                       ///< running max of the row's scores
    float l;                       ///< running sum of exp(score - m)
};

/// One block: query tile of `block` (heaviest, i.e. last, tiles first) of head (b, h); all its key tiles up to
/// the diagonal. Writes out rows and the state (lse, slope) of the tile's rows.
template <int D, class Block>
POLYALPACA_HD void forward_block(Problem const& p, int block, float* smem, Block& run) {
    using G = Geometry<D>;
    using S = ForwardThread<D>;
    constexpr int R = G::rows;
    QueryTile const at = query_tile(p, block, R, D);
    int const qt = at.qt, bh = at.bh, b = at.b, h = at.h, g = at.g, i0 = at.i0;
    std::int64_t const q_ld = at.q_ld, kv_ld = at.kv_ld;
    float* qs = smem;          // (R, D) queries
    float* ks = qs + G::tile;  // (R, D) keys
    float* vs = ks + G::tile;  // (R, D) values
    float* ss = vs + G::tile;  // (R, R) scores
    float const slope = p.slopes ? p.slopes[h] : 0.0f;

    run.each([&](int t, S& s) {
        load_tile<D>(t, p.q + (std::int64_t(b) * p.seq + i0) * q_ld + std::int64_t(h) * D, q_ld, p.seq - i0, qs);
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) s.acc[e] = 0.0f;
        s.m = -INFINITY;
        s.l = 0.0f;
    });
    for (int kt = 0; kt <= qt; ++kt) {
        int const j0 = kt * R;
        run.each([&](int t, S&) {
            std::int64_t const base = (std::int64_t(b) * p.seq + j0) * kv_ld + std::int64_t(g) * D;
            load_tile<D>(t, p.k + base, kv_ld, p.seq - j0, ks);
            load_tile<D>(t, p.v + base, kv_ld, p.seq - j0, vs);
        });
        run.each([&](int t, S&) {  // scores of row r against keys c, c + 4, ...
            int const r = t / G::lanes, c = t % G::lanes;
            float dot[G::per_thread];
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) dot[n] = 0.0f;
            for (int d = 0; d < D; ++d) {
                float const x = qs[r * G::ld + d];
                POLYALPACA_UNROLL
                for (int n = 0; n < G::per_thread; ++n) dot[n] += x * ks[(c + G::lanes * n) * G::ld + d];
            }
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) {
                int const j = c + G::lanes * n;
                ss[r * G::sld + j] = score(dot[n], i0 + r, j0 + j, p.seq, p.scale, slope);
            }
        });
        run.each([&](int t, S& s) {  // online softmax: rescale, then add this tile's exp(score - m) V
            int const r = t / G::lanes, c = t % G::lanes;
            float const* row = ss + r * G::sld;
            float tile_max = -INFINITY;
            for (int j = 0; j < R; ++j) tile_max = fmaxf(tile_max, row[j]);
            float const m = fmaxf(s.m, tile_max);
            if (m == -INFINITY) return;  // nothing visible yet (only padding rows past seq)
            float const alpha = expf(s.m - m);
            s.l *= alpha;
            POLYALPACA_UNROLL
            for (int e = 0; e < G::cols; ++e) s.acc[e] *= alpha;
            for (int j = 0; j < R; ++j) {
                float const pj = expf(row[j] - m);
                s.l += pj;
                float const* vrow = vs + j * G::ld + c;
                POLYALPACA_UNROLL
                for (int e = 0; e < G::cols; ++e) s.acc[e] += pj * vrow[G::lanes * e];
            }
            s.m = m;
        });
    }
    run.each([&](int t, S& s) {
        int const r = t / G::lanes, c = t % G::lanes, i = i0 + r;
        if (i >= p.seq) return;
        float const inv = 1.0f / s.l;
        float* orow = p.out + (std::int64_t(b) * p.seq + i) * q_ld + std::int64_t(h) * D + c;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) orow[G::lanes * e] = s.acc[e] * inv;
        if (c == 0) {
            float* st = p.state + (std::int64_t(bh) * p.seq + i) * p.state_ld;
            st[0] = s.m + logf(s.l);
            st[1] = slope;
        }
    });
}

// ---- backward ----------------------------------------------------------------------------------------------

/// The probability exp(score - lse) of an (i, j) pair, 0 where masked.
POLYALPACA_HD inline float probability(float dot, int i, int j, int seq, float scale, float slope, float lse) {
    return (j <= i && j < seq && i < seq) ? expf(scale * dot + slope * float(j) - lse) : 0.0f;
}

template <int D>
struct DqThread {
    float acc[Geometry<D>::cols];  ///< sum_j dS_ij k_j, columns c, c + 4, ...
    float lse, delta, partial;
};

/// Thread t's share of D_i = rowsum(dO_i * O_i) for its row i = i0 + t / lanes: columns c, c + lanes, ... of
/// head h, from the forward's out (0 for rows past seq).
template <int D>
POLYALPACA_HD inline float saved_out_partial(Problem const& p, int t, int b, int h, int i0) {
    constexpr int lanes = Geometry<D>::lanes;
    int const r = t / lanes, c = t % lanes, i = i0 + r;
    if (i >= p.seq) return 0.0f;
    std::int64_t const at = (std::int64_t(b) * p.seq + i) * std::int64_t(p.heads) * D + std::int64_t(h) * D + c;
    float sum = 0.0f;
    POLYALPACA_UNROLL
    for (int e = 0; e < D / lanes; ++e) sum += p.dout[at + lanes * e] * p.saved_out[at + lanes * e];
    return sum;
}

/// Block of kernel 1 (one per query tile of head (b, h), heaviest first): D_i = rowsum(dO_i * O_i) into p.delta,
/// from p.saved_out when given, else by pass 1 over the key tiles up to the diagonal as sum_j P_ij dP_ij
/// (dP_ij = dO_i . v_j); pass 2, when p.dq is set, recomputes P and dP, forms dS = P (dP - D) and adds scale dS K
/// into dq.
template <int D, class Block>
POLYALPACA_HD void backward_dq_block(Problem const& p, int block, float* smem, Block& run) {
    using G = Geometry<D>;
    using S = DqThread<D>;
    constexpr int R = G::rows;
    QueryTile const at = query_tile(p, block, R, D);
    int const qt = at.qt, bh = at.bh, b = at.b, h = at.h, g = at.g, i0 = at.i0;
    std::int64_t const q_ld = at.q_ld, kv_ld = at.kv_ld;
    float* qs = smem;             // (R, D) queries
    float* dos = qs + G::tile;    // (R, D) output gradients
    float* ks = dos + G::tile;    // (R, D) keys
    float* vs = ks + G::tile;     // (R, D) values
    float* dss = vs + G::tile;    // (R, R) dS
    float* part = dss + G::square;  // (R, lanes) partial sums of D_i
    float const slope = p.state[std::int64_t(bh) * p.seq * p.state_ld + 1];

    run.each([&](int t, S& s) {
        std::int64_t const base = (std::int64_t(b) * p.seq + i0) * q_ld + std::int64_t(h) * D;
        load_tile<D>(t, p.q + base, q_ld, p.seq - i0, qs);
        load_tile<D>(t, p.dout + base, q_ld, p.seq - i0, dos);
        int const i = i0 + t / G::lanes;
        s.lse = i < p.seq ? p.state[(std::int64_t(bh) * p.seq + i) * p.state_ld] : 0.0f;
        s.partial = p.saved_out ? saved_out_partial<D>(p, t, b, h, i0) : 0.0f;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) s.acc[e] = 0.0f;
    });
    // P_ij and dP_ij of row r against keys c, c + 4, ... of the tile at j0, from the shared tiles.
    auto probabilities = [&](int t, S const& s, int j0, float* prob, float* dp) {
        int const r = t / G::lanes, c = t % G::lanes;
        float dot[G::per_thread];
        POLYALPACA_UNROLL
        for (int n = 0; n < G::per_thread; ++n) dot[n] = dp[n] = 0.0f;
        for (int d = 0; d < D; ++d) {
            float const x = qs[r * G::ld + d], y = dos[r * G::ld + d];
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) {
                int const j = c + G::lanes * n;
                dot[n] += x * ks[j * G::ld + d];
                dp[n] += y * vs[j * G::ld + d];
            }
        }
        POLYALPACA_UNROLL
        for (int n = 0; n < G::per_thread; ++n)
            prob[n] = probability(dot[n], i0 + r, j0 + c + G::lanes * n, p.seq, p.scale, slope, s.lse);
    };
    auto load_keys = [&](int t, int j0) {
        std::int64_t const base = (std::int64_t(b) * p.seq + j0) * kv_ld + std::int64_t(g) * D;
        load_tile<D>(t, p.k + base, kv_ld, p.seq - j0, ks);
        load_tile<D>(t, p.v + base, kv_ld, p.seq - j0, vs);
    };
    for (int kt = 0; p.saved_out == nullptr && kt <= qt; ++kt) {  // pass 1: D_i without the forward's out
        run.each([&](int t, S&) { load_keys(t, kt * R); });
        run.each([&](int t, S& s) {
            float prob[G::per_thread], dp[G::per_thread];
            probabilities(t, s, kt * R, prob, dp);
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) s.partial += prob[n] * dp[n];
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
        run.each([&](int t, S&) { load_keys(t, kt * R); });
        run.each([&](int t, S& s) {
            int const r = t / G::lanes, c = t % G::lanes;
            float prob[G::per_thread], dp[G::per_thread];
            probabilities(t, s, kt * R, prob, dp);
            POLYALPACA_UNROLL
            for (int n = 0; n < G::per_thread; ++n) dss[r * G::sld + c + G::lanes * n] = prob[n] * (dp[n] - s.delta);
        });
        run.each([&](int t, S& s) {
            int const r = t / G::lanes, c = t % G::lanes;
            for (int j = 0; j < R; ++j) {
                float const ds = dss[r * G::sld + j];
                float const* krow = ks + j * G::ld + c;
                POLYALPACA_UNROLL
                for (int e = 0; e < G::cols; ++e) s.acc[e] += ds * krow[G::lanes * e];
            }
        });
    }
    run.each([&](int t, S& s) {
        int const r = t / G::lanes, c = t % G::lanes, i = i0 + r;
        if (i >= p.seq) return;
        float* row = p.dq + (std::int64_t(b) * p.seq + i) * q_ld + std::int64_t(h) * D + c;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) row[G::lanes * e] += p.scale * s.acc[e];
    });
}

/// Kernel 2: lses[t] and deltas[t] (D_i, or 0 when dk is not wanted) of the query tile's rows i0 + t, t < rows,
/// for threads t < rows; `row` is the state row of query i0 (0 past seq).
POLYALPACA_HD inline void load_query_stats(Problem const& p, int t, int rows, std::int64_t row, int i0, bool want_dk,
                                           float* lses, float* deltas) {
    if (t >= rows) return;
    bool const valid = i0 + t < p.seq;
    lses[t] = valid ? p.state[(row + t) * p.state_ld] : 0.0f;
    deltas[t] = valid && want_dk ? p.delta[row + t] : 0.0f;
}

template <int D>
struct DkvThread {
    float dk[Geometry<D>::cols];  ///< sum_i dS_ij q_i over the group's heads, columns c, c + 4, ...
    float dv[Geometry<D>::cols];  ///< sum_i P_ij dO_i
};

/// Block of kernel 2 (one per key tile of kv head (b, g), heaviest, i.e. first, tiles first): for every query
/// head of the group and every query tile from the key tile's on, recomputes P and dS (D_i from kernel 1) and
/// accumulates dV = P^T dO and dK = scale dS^T Q; adds them into dk and dv (either may be null).
template <int D, class Block>
POLYALPACA_HD void backward_dkv_block(Problem const& p, int block, float* smem, Block& run) {
    using G = Geometry<D>;
    using S = DkvThread<D>;
    constexpr int R = G::rows;
    int const tiles = tile_count(p.seq, R), kv_total = p.batch * p.kv_heads, group = p.heads / p.kv_heads;
    int const kt = block / kv_total, bg = block % kv_total;
    int const b = bg / p.kv_heads, g = bg % p.kv_heads;
    int const j0 = kt * R;
    std::int64_t const q_ld = std::int64_t(p.heads) * D, kv_ld = std::int64_t(p.kv_heads) * D;
    float* ks = smem;               // (R, D) keys
    float* vs = ks + G::tile;       // (R, D) values
    float* qs = vs + G::tile;       // (R, D) queries
    float* dos = qs + G::tile;      // (R, D) output gradients
    float* ps = dos + G::tile;      // (R keys, R queries) P
    float* dss = ps + G::square;    // (R keys, R queries) dS
    float* lses = dss + G::square;  // (R) lse of the query rows
    float* deltas = lses + R;       // (R) D of the query rows
    bool const want_dk = p.dk != nullptr;

    run.each([&](int t, S& s) {
        std::int64_t const base = (std::int64_t(b) * p.seq + j0) * kv_ld + std::int64_t(g) * D;
        load_tile<D>(t, p.k + base, kv_ld, p.seq - j0, ks);
        load_tile<D>(t, p.v + base, kv_ld, p.seq - j0, vs);
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) s.dk[e] = s.dv[e] = 0.0f;
    });
    for (int h = g * group; h < (g + 1) * group; ++h) {
        std::int64_t const head_row = std::int64_t(b * p.heads + h) * p.seq;  // state row of query 0
        float const slope = p.state[head_row * p.state_ld + 1];
        for (int qt = kt; qt < tiles; ++qt) {
            int const i0 = qt * R;
            run.each([&](int t, S&) {
                std::int64_t const base = (std::int64_t(b) * p.seq + i0) * q_ld + std::int64_t(h) * D;
                load_tile<D>(t, p.q + base, q_ld, p.seq - i0, qs);
                load_tile<D>(t, p.dout + base, q_ld, p.seq - i0, dos);
                load_query_stats(p, t, R, head_row + i0, i0, want_dk, lses, deltas);
            });
            run.each([&](int t, S&) {  // P and dS of key row r against queries c, c + 4, ...
                int const r = t / G::lanes, c = t % G::lanes;
                float dot[G::per_thread], dp[G::per_thread];
                POLYALPACA_UNROLL
                for (int n = 0; n < G::per_thread; ++n) dot[n] = dp[n] = 0.0f;
                for (int d = 0; d < D; ++d) {
                    float const x = ks[r * G::ld + d], y = vs[r * G::ld + d];
                    POLYALPACA_UNROLL
                    for (int n = 0; n < G::per_thread; ++n) {
                        int const i = c + G::lanes * n;
                        dot[n] += qs[i * G::ld + d] * x;
                        dp[n] += dos[i * G::ld + d] * y;
                    }
                }
                POLYALPACA_UNROLL
                for (int n = 0; n < G::per_thread; ++n) {
                    int const i = c + G::lanes * n;
                    float const prob = probability(dot[n], i0 + i, j0 + r, p.seq, p.scale, slope, lses[i]);
                    ps[r * G::sld + i] = prob;
                    dss[r * G::sld + i] = prob * (dp[n] - deltas[i]);
                }
            });
            run.each([&](int t, S& s) {
                int const r = t / G::lanes, c = t % G::lanes;
                for (int i = 0; i < R; ++i) {
                    float const prob = ps[r * G::sld + i], ds = dss[r * G::sld + i];
                    float const* dorow = dos + i * G::ld + c;
                    float const* qrow = qs + i * G::ld + c;
                    POLYALPACA_UNROLL
                    for (int e = 0; e < G::cols; ++e) {
                        s.dv[e] += prob * dorow[G::lanes * e];
                        s.dk[e] += ds * qrow[G::lanes * e];
                    }
                }
            });
        }
    }
    run.each([&](int t, S& s) {
        int const r = t / G::lanes, c = t % G::lanes, j = j0 + r;
        if (j >= p.seq) return;
        std::int64_t const at = (std::int64_t(b) * p.seq + j) * kv_ld + std::int64_t(g) * D + c;
        POLYALPACA_UNROLL
        for (int e = 0; e < G::cols; ++e) {
            if (p.dk) p.dk[at + G::lanes * e] += p.scale * s.dk[e];
            if (p.dv) p.dv[at + G::lanes * e] += s.dv[e];
        }
    });
}

/// Blocks of each kernel: forward and kernel 1 one per (batch, head, query tile); kernel 2 one per (batch, kv
/// head, key tile).
template <int D>
constexpr std::int64_t query_blocks(Problem const& p) {
    return std::int64_t(p.batch) * p.heads * tile_count(p.seq, Geometry<D>::rows);
}
template <int D>
constexpr std::int64_t key_blocks(Problem const& p) {
    return std::int64_t(p.batch) * p.kv_heads * tile_count(p.seq, Geometry<D>::rows);
}

}  // namespace polyalpaca::cuda::flash
