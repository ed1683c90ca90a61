/// @file tests/unit/attention_decode.cpp
/// @brief Cached attention (backend/cpu/attention_decode.hpp) against full causal attention: sequences of different
///        lengths fed in chunks, GQA and ALiBi; cache writes, slot reordering and bad input.
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cpu/attention_decode.hpp"
#include "polyalpaca/layers/alibi.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using polyalpaca::testing::random_matrix;

namespace {

int const heads = 4, kv_heads = 2, head_dim = 3;
int const kv_cols = kv_heads * head_dim, q_cols = heads * head_dim;

/// Full causal attention of one sequence (seq rows) as the reference.
Matrix<double> full_attention(Matrix<double> const& q, Matrix<double> const& k, Matrix<double> const& v,
                              std::vector<double> const& slopes, double scale) {
    cpu::Context ctx(1);
    int const seq = int(q.rows());
    AttentionShape const shape{1, seq, heads, kv_heads, head_dim};
    Matrix<double> out(seq, q_cols), probs(Index(heads) * seq, seq);
    cpu::attention_forward(ctx, View<double const>(q.data(), seq, q_cols), View<double const>(k.data(), seq, kv_cols),
                           View<double const>(v.data(), seq, kv_cols), View<double>(out.data(), seq, q_cols),
                           View<double>(probs.data(), probs.rows(), seq), shape, slopes.empty() ? nullptr : slopes.data(),
                           scale);
    return out;
}

}  // namespace

TEST_CASE("cached attention fed in chunks equals full causal attention per sequence", "[unit][attention][generate]") {
    double const scale = 0.7;
    for (bool alibi : {false, true}) {
        std::vector<double> const slopes = alibi ? alibi_slopes(heads) : std::vector<double>{};
        std::vector<int> const lengths{5, 3};
        std::vector<Matrix<double>> q, k, v, want;
        for (std::size_t s = 0; s < lengths.size(); ++s) {
            q.push_back(random_matrix<double>(lengths[s], q_cols, 10 + s));
            k.push_back(random_matrix<double>(lengths[s], kv_cols, 20 + s));
            v.push_back(random_matrix<double>(lengths[s], kv_cols, 30 + s));
            want.push_back(full_attention(q[s], k[s], v[s], slopes, scale));
        }
        // slot 0 (sequence 1) holds cache rows 0..3, slot 1 (sequence 0) rows 4..9: the order differs from the
        // order of the new rows in each call.
        Index const cache_row[2] = {4, 0};
        Matrix<double> k_cache = Matrix<double>::Zero(10, kv_cols), v_cache = Matrix<double>::Zero(10, kv_cols);
        cpu::Context ctx(2);
        // Chunks of new rows per call: sequence 0 gets 3 then 1 then 1, sequence 1 gets 2 then 1 then nothing.
        std::vector<std::vector<int>> const chunks{{3, 2}, {1, 1}, {1, 0}};
        std::vector<int> past{0, 0};
        double worst = 0;
        for (auto const& chunk : chunks) {
            std::vector<CachedSequence> seqs;
            Index rows = 0;
            for (std::size_t s = 0; s < 2; ++s)
                if (chunk[s] > 0) {
                    seqs.push_back({cache_row[s], past[s], chunk[s]});
                    rows += chunk[s];
                }
            Matrix<double> q_new(rows, q_cols), k_new(rows, kv_cols), v_new(rows, kv_cols), out(rows, q_cols);
            Index r = 0;
            for (std::size_t s = 0; s < 2; ++s) {
                if (chunk[s] == 0) continue;
                q_new.middleRows(r, chunk[s]) = q[s].middleRows(past[s], chunk[s]);
                k_new.middleRows(r, chunk[s]) = k[s].middleRows(past[s], chunk[s]);
                v_new.middleRows(r, chunk[s]) = v[s].middleRows(past[s], chunk[s]);
                r += chunk[s];
            }
            cpu::kv_cache_write(ctx, View<double const>(k_new.data(), rows, kv_cols),
                                View<double>(k_cache.data(), 10, kv_cols), seqs);
            cpu::kv_cache_write(ctx, View<double const>(v_new.data(), rows, kv_cols),
                                View<double>(v_cache.data(), 10, kv_cols), seqs);
            cpu::attention_decode(ctx, View<double const>(q_new.data(), rows, q_cols),
                                  View<double const>(k_cache.data(), 10, kv_cols),
                                  View<double const>(v_cache.data(), 10, kv_cols), View<double>(out.data(), rows, q_cols),
                                  seqs, heads, kv_heads, head_dim, alibi ? slopes.data() : nullptr, scale);
            r = 0;
            for (std::size_t s = 0; s < 2; ++s) {
                if (chunk[s] == 0) continue;
                worst = std::max(worst, (out.middleRows(r, chunk[s]) - want[s].middleRows(past[s], chunk[s]))
                                            .cwiseAbs()
                                            .maxCoeff());
                r += chunk[s];
                past[s] += chunk[s];
            }
        }
        INFO("alibi " << alibi);
        CHECK(worst < 1e-12);
        CHECK(past == lengths);
    }
}

TEST_CASE("kv_cache_gather copies slots as a permutation, reading before writing", "[unit][attention][generate]") {
    cpu::Context ctx(1);
    Matrix<float> cache(6, 2);  // three slots of 2 rows
    for (Index r = 0; r < 6; ++r) cache.row(r) << float(r), float(10 * r);
    std::vector<Index> const src{2, 0, 0}, dst{0, 2, 4};
    std::vector<int> const lengths{2, 1, 2};
    cpu::kv_cache_gather(ctx, View<float>(cache.data(), 6, 2), std::span<Index const>(src), std::span<Index const>(dst),
                         std::span<int const>(lengths));
    CHECK(cache(0, 0) == 2);  // slot 0 <- old slot 1
    CHECK(cache(1, 0) == 3);
    CHECK(cache(2, 0) == 0);  // slot 1 <- old slot 0, one row (the old content, not the row just written)
    CHECK(cache(3, 0) == 3);  // untouched
    CHECK(cache(4, 0) == 0);  // slot 2 <- old slot 0
    CHECK(cache(5, 1) == 10);
    std::vector<Index> const far{5};
    std::vector<Index> const zero{0};
    std::vector<int> const two{2};
    CHECK_THROWS_WITH(cpu::kv_cache_gather(ctx, View<float>(cache.data(), 6, 2), std::span<Index const>(far),
                                           std::span<Index const>(zero), std::span<int const>(two)),
                      Catch::Contains("does not fit"));
}

TEST_CASE("cached attention rejects sequences outside the cache", "[unit][attention][generate]") {
    cpu::Context ctx(1);
    Matrix<float> q = Matrix<float>::Zero(2, q_cols), out(2, q_cols);
    Matrix<float> cache = Matrix<float>::Zero(4, kv_cols);
    std::vector<CachedSequence> const seqs{{2, 1, 2}};  // rows 2..4 of a 4-row cache
    CHECK_THROWS_WITH(cpu::attention_decode(ctx, View<float const>(q.data(), 2, q_cols),
                                            View<float const>(cache.data(), 4, kv_cols),
                                            View<float const>(cache.data(), 4, kv_cols),
                                            View<float>(out.data(), 2, q_cols), seqs, heads, kv_heads, head_dim,
                                            static_cast<float const*>(nullptr), 1.0f),
                      Catch::Contains("reaches cache row 5"));
}
