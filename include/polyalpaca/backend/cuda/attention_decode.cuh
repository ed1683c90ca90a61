/// @file backend/cuda/attention_decode.cuh
/// @brief Incremental decoding on the GPU, with the contracts and checks of backend/cpu/attention_decode.hpp:
/// new rows into a KV cache (kv_cache_write), beam reordering of cache slots (kv_cache_gather), and causal
/// attention of new query rows against each sequence's cached keys and values (attention_decode).
///
/// The sequence and slot tables travel as kernel arguments, up to `table_entries` per launch (longer tables take
/// several launches), so no host-to-device copy precedes a kernel. attention_decode runs one block per (new row,
/// head): its 4 warps score their share of the visible keys (the lanes split the head's columns), the block takes
/// the softmax in fp32 over the scores kept in shared memory, then each thread sums p_j v_j for its columns.
/// Scratch: kv_cache_gather stages the moved rows in slot 4, the attention slot.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/attention.cuh"
#include "polyalpaca/backend/cuda/block_reduce.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/backend/kv_cache_checks.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace decode {

inline constexpr int table_entries = 64;  ///< table rows per launch (kernel arguments stay under 4 KiB)
inline constexpr int warps = 4;           ///< warps of an attention_decode block
inline constexpr int max_heads = 128;     ///< ALiBi slopes travel as an argument of this many floats
inline constexpr int scratch_slot = cuda::scratch_slot::attention;

/// Contiguous row blocks to copy: entry e moves rows src[e] .. src[e] + n_e - 1 to dst[e] .., where n_e =
/// first[e + 1] - first[e] (first[count] = total); rows are numbered 0 .. total - 1 across the entries.
struct RowCopies {
    int count = 0;
    Index total = 0;
    Index first[table_entries + 1];
    Index src[table_entries];
    Index dst[table_entries];
};

/// The table entry that row r (0 <= r < total) belongs to.
__device__ inline int entry_of(Index const* first, int count, Index r) {
    int e = 0;
    while (e + 1 < count && first[e + 1] <= r) ++e;
    return e;
}

template <class T>
__global__ void copy_rows_kernel(T const* src, T* dst, Index cols, RowCopies copies) {
    for (Index r = blockIdx.x; r < copies.total; r += gridDim.x) {
        int const e = entry_of(copies.first, copies.count, r);
        Index const offset = r - copies.first[e];
        T const* from = src + (copies.src[e] + offset) * cols;
        T* to = dst + (copies.dst[e] + offset) * cols;
        for (Index c = threadIdx.x; c < cols; c += blockDim.x) to[c] = from[c];
    }
}

/// One row block of a copy: `rows` rows from src_row on to dst_row on.
struct RowBlock {
    Index src_row, dst_row, rows;
};

/// Queues the copies of `blocks` (rows of `cols` floats) from src to dst, table_entries blocks per launch.
/// Source and destination rows must not overlap.
inline void copy_rows(Context& ctx, float const* src, float* dst, Index cols, std::span<RowBlock const> blocks) {
    for (std::size_t begin = 0; begin < blocks.size(); begin += table_entries) {
        std::size_t const end = std::min(blocks.size(), begin + std::size_t(table_entries));
        RowCopies copies;
        copies.count = int(end - begin);
        for (std::size_t i = begin; i < end; ++i) {
            copies.first[i - begin] = copies.total;
            copies.src[i - begin] = blocks[i].src_row;
            copies.dst[i - begin] = blocks[i].dst_row;
            copies.total += blocks[i].rows;
        }
        copies.first[copies.count] = copies.total;
        if (copies.total == 0) continue;
        copy_rows_kernel<float>
            <<<unsigned(std::min(copies.total, detail::max_blocks)), detail::block_threads, 0, ctx.stream()>>>(
                src, dst, cols, copies);
        detail::check_launch("decode::copy_rows_kernel");
    }
}

/// The sequences of one attention_decode launch: sequence e owns new rows first[e] .. first[e + 1] - 1 of the
/// launch (rows q_first + first[e] .. of q and out), its position 0 sits at cache row cache_row[e], and past[e]
/// positions were cached before this call.
struct Sequences {
    int count = 0;
    Index total = 0;
    Index q_first = 0;
    Index first[table_entries + 1];
    Index cache_row[table_entries];
    int past[table_entries];
};

struct Slopes {
    float value[max_heads];
};

/// Block (r, h): new row r of the launch, query head h. Shared memory: the row's scaled-free query (head_dim
/// floats), then one score per visible key.
template <class T>
__global__ void __launch_bounds__(warps * 32)
    attention_decode_kernel(T const* q, T const* k_cache, T const* v_cache, T* out, Index q_cols, Index kv_cols,
                            int group, int head_dim, float scale, bool alibi, Slopes slopes, Sequences seqs) {
    extern __shared__ float decode_smem[];
    Index const r = blockIdx.x;
    int const h = int(blockIdx.y);
    int const e = entry_of(seqs.first, seqs.count, r);
    Index const visible = Index(seqs.past[e]) + (r - seqs.first[e]) + 1;  // positions 0 .. past + i
    Index const row = seqs.q_first + r;
    float* query = decode_smem;
    float* scores = decode_smem + head_dim;

    T const* q_row = q + row * q_cols + Index(h) * head_dim;
    for (int d = int(threadIdx.x); d < head_dim; d += int(blockDim.x)) query[d] = float(q_row[d]);
    __syncthreads();

    int const lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
    Index const kv_offset = seqs.cache_row[e] * kv_cols + Index(h / group) * head_dim;
    float const slope = alibi ? slopes.value[h] : 0.0f;
    for (Index j = warp; j < visible; j += warps) {
        T const* key = k_cache + kv_offset + j * kv_cols;
        float dot = 0.0f;
        for (int d = lane; d < head_dim; d += 32) dot += query[d] * float(key[d]);
        dot = detail::warp_sum(dot);
        if (lane == 0) scores[j] = scale * dot + slope * float(j);
    }
    __syncthreads();

    float m = -INFINITY;
    for (Index j = threadIdx.x; j < visible; j += blockDim.x) m = fmaxf(m, scores[j]);
    m = detail::block_max(m);
    float sum = 0.0f;
    for (Index j = threadIdx.x; j < visible; j += blockDim.x) {
        float const p = expf(scores[j] - m);
        scores[j] = p;
        sum += p;
    }
    sum = detail::block_sum(sum);  // its barriers also publish every thread's p_j

    T const* value = v_cache + kv_offset;
    T* out_row = out + row * q_cols + Index(h) * head_dim;
    for (int d = int(threadIdx.x); d < head_dim; d += int(blockDim.x)) {
        float acc = 0.0f;
        for (Index j = 0; j < visible; ++j) acc += scores[j] * float(value[j * kv_cols + d]);
        out_row[d] = T(acc / sum);
    }
}

}  // namespace decode

/// Copies the new rows (R, cols) of every sequence (rows of sequence i follow those of sequence i - 1) into
/// cache rows cache_row + past .. cache_row + past + rows - 1.
inline void kv_cache_write(Context& ctx, View<float const> rows, View<float> cache,
                           std::span<CachedSequence const> seqs) {
    Index const total = polyalpaca::detail::cached_rows(seqs, cache.rows, "kv_cache_write");
    require_shape(rows, total, cache.cols, "kv_cache_write: new rows (sum of rows, cache columns)");
    ctx.make_current();
    std::vector<decode::RowBlock> blocks;
    Index r = 0;
    for (auto const& s : seqs) {
        blocks.push_back({r, s.cache_row + s.past, Index(s.rows)});
        r += s.rows;
    }
    decode::copy_rows(ctx, rows.data, cache.data, cache.cols, blocks);
}

/// Beam reordering: destination slot i (cache rows dst_rows[i] ..) receives the first lengths[i] rows of source
/// slot i (cache rows src_rows[i] ..), all read before any is written. Slots may be sources of several
/// destinations.
inline void kv_cache_gather(Context& ctx, View<float> cache, std::span<Index const> src_rows,
                            std::span<Index const> dst_rows, std::span<int const> lengths) {
    Index const total = polyalpaca::detail::gathered_rows(src_rows, dst_rows, lengths, cache.rows);
    if (total == 0) return;
    ctx.make_current();
    auto* staged = static_cast<float*>(
        ctx.scratch(decode::scratch_slot, kv_gather_bytes(total, cache.cols)));
    std::vector<decode::RowBlock> in, back;
    Index at = 0;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        in.push_back({src_rows[i], at, Index(lengths[i])});
        back.push_back({at, dst_rows[i], Index(lengths[i])});
        at += lengths[i];
    }
    decode::copy_rows(ctx, cache.data, staged, cache.cols, in);
    decode::copy_rows(ctx, staged, cache.data, cache.cols, back);
}

/// Causal attention of new query rows against cached keys and values.
/// q and out (R, heads*hd): the rows of sequence i follow those of sequence i - 1; k_cache and v_cache
/// (cache rows, kv_heads*hd) already hold every position of every sequence, the new ones included.
/// New row r of a sequence sits at position past + r and sees positions 0..past + r:
/// score(j) = scale * q . k_j + slope_h * j, softmax over j, out = sum_j p_j v_j.
/// Query head h reads kv head h / (heads / kv_heads). alibi_slopes is a host array of `heads` slopes or nullptr.
inline void attention_decode(Context& ctx, View<float const> q, View<float const> k_cache, View<float const> v_cache,
                             View<float> out, std::span<CachedSequence const> seqs, int heads, int kv_heads,
                             int head_dim, float const* alibi_slopes, float scale) {
    Index const total =
        polyalpaca::detail::checked_decode_rows(q, k_cache, v_cache, out, seqs, heads, kv_heads, head_dim);
    Index const q_cols = Index(heads) * head_dim;
    Index const kv_cols = Index(kv_heads) * head_dim;
    require(!alibi_slopes || heads <= decode::max_heads, "attention_decode: ALiBi with ", heads,
            " heads; at most ", decode::max_heads, " are supported");
    require(heads <= 65535, "attention_decode: ", heads, " heads exceed the grid's 65535");
    ctx.make_current();

    decode::Slopes slopes{};
    if (alibi_slopes) std::copy(alibi_slopes, alibi_slopes + heads, slopes.value);
    Index row = 0;
    for (std::size_t begin = 0; begin < seqs.size(); begin += decode::table_entries) {
        std::size_t const end = std::min(seqs.size(), begin + std::size_t(decode::table_entries));
        decode::Sequences batch;
        batch.count = int(end - begin);
        batch.q_first = row;
        Index keys = 0;  // the most positions any new row of this launch sees
        for (std::size_t i = begin; i < end; ++i) {
            auto const& s = seqs[i];
            batch.first[i - begin] = batch.total;
            batch.cache_row[i - begin] = s.cache_row;
            batch.past[i - begin] = s.past;
            batch.total += s.rows;
            keys = std::max(keys, Index(s.past) + s.rows);
        }
        batch.first[batch.count] = batch.total;
        std::size_t const bytes = std::size_t(head_dim + keys) * sizeof(float);
        auto const kernel = decode::attention_decode_kernel<float>;
        if (bytes > 48 * 1024)  // past 12k positions: opt in to more shared memory (the launch fails past the GPU's)
            POLYALPACA_CUDA_CHECK(
                cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
        dim3 const grid(unsigned(batch.total), unsigned(heads));
        kernel<<<grid, decode::warps * 32, bytes, ctx.stream()>>>(q.data, k_cache.data, v_cache.data, out.data, q_cols,
                                                                  kv_cols, heads / kv_heads, head_dim, scale,
                                                                  alibi_slopes != nullptr, slopes, batch);
        detail::check_launch("decode::attention_decode_kernel");
        row += batch.total;
    }
}

}  // namespace polyalpaca::cuda
