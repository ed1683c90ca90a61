// The q/k row permutations between Meta's interleaved rotary pairs and HF's rotate-half layout: they are inverses,
// they match HF's `permute` on a worked example, and a model with permuted q/k and the other RopeStyle gives the
// same logits.
#include <polyalpaca/io/rope_permutation.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <numeric>

namespace pa = polyalpaca;
using Catch::Contains;

namespace {
// Grouped-query (4 heads, 2 kv heads, head_dim 6): the k permutation must use the kv head count.
struct RotateHalfSize : pa::llama::Defaults {
    static constexpr int vocab = 40, hidden = 24, layers = 2, heads = 4, kv_heads = 2, ffn = 40;
    static constexpr pa::RopeStyle rope_style = pa::RopeStyle::RotateHalf;
};
struct AdjacentPairsSize : RotateHalfSize {
    static constexpr pa::RopeStyle rope_style = pa::RopeStyle::AdjacentPairs;
};
}  // namespace

TEST_CASE("HF's permute moves Meta row 2i + j of a head to row j * head_dim / 2 + i", "[io][rope_permutation]") {
    // HF convert_llama_weights_to_hf.py: w.view(heads, head_dim // 2, 2, cols).transpose(1, 2).reshape(rows, cols).
    // For 2 heads of head_dim 4 that takes rows [0, 2, 1, 3, 4, 6, 5, 7] of the Meta matrix.
    std::vector<double> meta(8 * 3);
    std::iota(meta.begin(), meta.end(), 0.0);
    std::vector<double> hf(meta.size());
    pa::io::permute_meta_to_hf(pa::View<double const>(meta.data(), 8, 3), pa::View<double>(hf.data(), 8, 3), 2);
    int const expected_rows[] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 3; ++c) CHECK(hf[std::size_t(r * 3 + c)] == meta[std::size_t(expected_rows[r] * 3 + c)]);
}

TEST_CASE("the two rope permutations are inverses", "[io][rope_permutation]") {
    for (auto [heads, head_dim, cols] :
         {std::tuple{1, 2, 1}, std::tuple{4, 6, 5}, std::tuple{8, 8, 64}, std::tuple{3, 16, 2}}) {
        pa::Index const rows = pa::Index(heads) * head_dim;
        std::vector<float> w(std::size_t(rows * cols)), there(w.size()), back(w.size());
        pa::Rng rng(std::uint64_t(heads * 100 + head_dim));
        for (auto& x : w) x = float(rng.normal());
        pa::View<float const> const wv(w.data(), rows, cols);
        pa::io::permute_hf_to_meta(wv, pa::View<float>(there.data(), rows, cols), heads);
        pa::io::permute_meta_to_hf(pa::View<float const>(there.data(), rows, cols),
                                   pa::View<float>(back.data(), rows, cols), heads);
        CHECK(back == w);
        pa::io::permute_meta_to_hf(wv, pa::View<float>(there.data(), rows, cols), heads);
        pa::io::permute_hf_to_meta(pa::View<float const>(there.data(), rows, cols),
                                   pa::View<float>(back.data(), rows, cols), heads);
        CHECK(back == w);
        if (head_dim > 2) CHECK(there != w);  // not the identity
        auto in_place = w;
        pa::io::permute_meta_to_hf_in_place(pa::View<float>(in_place.data(), rows, cols), heads);
        CHECK(in_place == there);
        pa::io::permute_hf_to_meta_in_place(pa::View<float>(in_place.data(), rows, cols), heads);
        CHECK(in_place == w);
    }
}

TEST_CASE("rope permutations refuse shapes without whole heads of rotary pairs", "[io][rope_permutation]") {
    std::vector<float> a(12), b(12);
    REQUIRE_THROWS_WITH(
        pa::io::permute_meta_to_hf(pa::View<float const>(a.data(), 12, 1), pa::View<float>(b.data(), 12, 1), 5),
        Contains("12 rows do not split into 5 heads"));
    REQUIRE_THROWS_WITH(
        pa::io::permute_hf_to_meta(pa::View<float const>(a.data(), 12, 1), pa::View<float>(b.data(), 12, 1), 4),
        Contains("head_dim 3 is odd"));
    REQUIRE_THROWS_WITH(
        pa::io::permute_meta_to_hf(pa::View<float const>(a.data(), 12, 1), pa::View<float>(b.data(), 6, 2), 2),
        Contains("destination shape (6, 2)"));
}

TEST_CASE("permuted q/k with adjacent-pairs RoPE give the logits of rotate-half RoPE",
          "[io][rope_permutation][model]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Llama<RotateHalfSize>, pa::CpuEigen, double> hf(ctx, {.seed = 5});
    pa::CausalLm<pa::Llama<AdjacentPairsSize>, pa::CpuEigen, double> meta(ctx, {.seed = 99});
    for (auto* p : hf.parameters().parameters()) {
        auto* q = meta.parameters().find(p->name);
        REQUIRE(q != nullptr);
        pa::View<double const> const src(p->value, p->rows, p->cols);
        if (p->name.ends_with("q_proj.weight"))
            pa::io::permute_hf_to_meta(src, q->mutable_values(), RotateHalfSize::heads);
        else if (p->name.ends_with("k_proj.weight"))
            pa::io::permute_hf_to_meta(src, q->mutable_values(), RotateHalfSize::kv_heads);
        else
            std::copy_n(p->value, p->size(), q->value);
    }
    xt::xtensor<std::int32_t, 2> ids = {{3, 17, 0, 39, 8, 8, 21, 5, 30}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
    auto const batch = pa::make_lm_batch(ids);
    pa::RowMajorMatrix<double> a(batch.tokens(), RotateHalfSize::vocab), b(batch.tokens(), RotateHalfSize::vocab);
    hf.logits(ctx, batch, pa::view(a));
    meta.logits(ctx, batch, pa::view(b));
    double const max_error = (a - b).cwiseAbs().maxCoeff();
    INFO("max |logit difference| " << max_error);
    CHECK(max_error < 1e-12);

    // Unpermuted weights under the other style really do give other logits (the check above can fail).
    pa::CausalLm<pa::Llama<AdjacentPairsSize>, pa::CpuEigen, double> unpermuted(ctx, {.seed = 5});
    unpermuted.logits(ctx, batch, pa::view(b));
    CHECK((a - b).cwiseAbs().maxCoeff() > 1e-6);
}
