/// @file io/rope_permutation.hpp
/// @brief Row permutations of q/k weights between Meta's interleaved rotary pairs and HF's rotate-half layout.
#pragma once

#include <algorithm>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::io {

// Within one head of head_dim rows, Meta (and llama2.c, and GGUF files from llama.cpp's converter) rotate the pairs
// (2i, 2i+1); HF rotates (i, i + head_dim/2). HF's convert_llama_weights_to_hf.py `permute` moves Meta row 2i + j of
// each head to HF row j * head_dim/2 + i (j in {0, 1}); llama.cpp's convert_hf_to_gguf.py `permute` undoes it. Applied
// to the rows of q_proj (heads = attention heads) and k_proj (heads = kv heads), the permuted model with the other
// RopeStyle computes the same function: q.k is unchanged when q and k are permuted alike.

/// The Meta-layout row that HF-layout row `hf_row` holds, for heads of `head_dim` rows.
inline Index meta_row_of_hf_row(Index hf_row, Index head_dim) {
    Index const half = head_dim / 2;
    Index const head = hf_row / head_dim, r = hf_row % head_dim;
    return head * head_dim + 2 * (r % half) + r / half;
}

namespace detail {
template <class T>
void check_rope_permutation(View<T const> src, View<T> dst, int heads, char const* what) {
    require(heads > 0, what, ": heads must be positive, got ", heads);
    require(src.rows % heads == 0, what, ": ", src.rows, " rows do not split into ", heads, " heads");
    require((src.rows / heads) % 2 == 0, what, ": head_dim ", src.rows / heads,
            " is odd, so rotary pairs do not exist");
    require(dst.rows == src.rows && dst.cols == src.cols, what, ": destination shape (", dst.rows, ", ", dst.cols,
            ") differs from the source (", src.rows, ", ", src.cols, ")");
    require(src.data != dst.data || src.size() == 0, what, ": source and destination must not be the same memory");
}
}  // namespace detail

/// HF's `permute`: Meta (interleaved pairs) rows -> HF (rotate-half) rows. src, dst: (heads * head_dim, cols).
template <class T>
void permute_meta_to_hf(View<T const> src, View<T> dst, int heads) {
    detail::check_rope_permutation(src, dst, heads, "permute_meta_to_hf");
    Index const head_dim = src.rows / heads;
    for (Index r = 0; r < src.rows; ++r) std::copy_n(src.row(meta_row_of_hf_row(r, head_dim)), src.cols, dst.row(r));
}

/// The inverse (llama.cpp's converter `permute`): HF (rotate-half) rows -> Meta (interleaved pairs) rows.
template <class T>
void permute_hf_to_meta(View<T const> src, View<T> dst, int heads) {
    detail::check_rope_permutation(src, dst, heads, "permute_hf_to_meta");
    Index const head_dim = src.rows / heads;
    for (Index r = 0; r < src.rows; ++r) std::copy_n(src.row(r), src.cols, dst.row(meta_row_of_hf_row(r, head_dim)));
}

/// permute_meta_to_hf of w in place (host memory).
template <class T>
void permute_meta_to_hf_in_place(View<T> w, int heads) {
    std::vector<T> copy(w.data, w.data + w.size());
    permute_meta_to_hf(View<T const>(copy.data(), w.rows, w.cols), w, heads);
}

/// permute_hf_to_meta of w in place (host memory).
template <class T>
void permute_hf_to_meta_in_place(View<T> w, int heads) {
    std::vector<T> copy(w.data, w.data + w.size());
    permute_hf_to_meta(View<T const>(copy.data(), w.rows, w.cols), w, heads);
}

}  // namespace polyalpaca::io
