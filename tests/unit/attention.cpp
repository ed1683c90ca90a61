/// @file tests/unit/attention.cpp
/// @brief Causal attention against a naive double-precision loop: GQA, ALiBi, masking, fp32 agreement, bad input.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu/attention.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using polyalpaca::testing::random_matrix;

namespace {

/// A view of a test matrix (core's view() cannot deduce T through the Matrix alias).
template <class S>
View<S> as_view(Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& m) {
    return {m.data(), m.rows(), m.cols()};
}
template <class S>
View<S const> as_view(Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> const& m) {
    return {m.data(), m.rows(), m.cols()};
}

struct Inputs {
    Matrix<double> q, k, v;
};

Inputs make_inputs(AttentionShape const& s, std::uint64_t seed) {
    Index const n = Index(s.batch) * s.seq;
    return {random_matrix<double>(n, s.heads * s.head_dim, seed),
            random_matrix<double>(n, s.kv_heads * s.head_dim, seed + 1),
            random_matrix<double>(n, s.kv_heads * s.head_dim, seed + 2)};
}

struct Result {
    Matrix<double> out, probs;
};

/// Explicit causal softmax attention, one score at a time.
Result naive_attention(Inputs const& in, AttentionShape const& s, std::vector<double> const& slopes, double scale) {
    Result r{Matrix<double>::Zero(in.q.rows(), in.q.cols()),
             Matrix<double>::Zero(Index(s.batch) * s.heads * s.seq, s.seq)};
    int const group = s.heads / s.kv_heads;
    for (int b = 0; b < s.batch; ++b) {
        for (int h = 0; h < s.heads; ++h) {
            int const g = h / group;
            for (int i = 0; i < s.seq; ++i) {
                std::vector<double> score(std::size_t(i) + 1);
                for (int j = 0; j <= i; ++j) {
                    double dot = 0;
                    for (int d = 0; d < s.head_dim; ++d)
                        dot += in.q(b * s.seq + i, h * s.head_dim + d) * in.k(b * s.seq + j, g * s.head_dim + d);
                    score[j] = scale * dot + (slopes.empty() ? 0.0 : slopes[h] * j);
                }
                double const top = *std::max_element(score.begin(), score.end());
                double total = 0;
                for (double& e : score) total += (e = std::exp(e - top));
                Index const prow = (Index(b) * s.heads + h) * s.seq + i;
                for (int j = 0; j <= i; ++j) {
                    double const p = score[j] / total;
                    r.probs(prow, j) = p;
                    for (int d = 0; d < s.head_dim; ++d)
                        r.out(b * s.seq + i, h * s.head_dim + d) += p * in.v(b * s.seq + j, g * s.head_dim + d);
                }
            }
        }
    }
    return r;
}

template <class T>
Result run_forward(Inputs const& in, AttentionShape const& s, std::vector<double> const& slopes, double scale) {
    cpu::Context ctx;
    Matrix<T> const q = in.q.cast<T>(), k = in.k.cast<T>(), v = in.v.cast<T>();
    Matrix<T> out(q.rows(), q.cols()), probs(Index(s.batch) * s.heads * s.seq, s.seq);
    std::vector<T> slopes_t(slopes.begin(), slopes.end());
    cpu::attention_forward<T>(ctx, as_view(q), as_view(k), as_view(v), as_view(out), as_view(probs), s,
                              slopes.empty() ? nullptr : slopes_t.data(), T(scale));
    return {out.template cast<double>(), probs.template cast<double>()};
}

struct Grads {
    Matrix<double> dq, dk, dv;
};

template <class T>
Grads run_backward(Inputs const& in, Matrix<double> const& dout, AttentionShape const& s,
                   std::vector<double> const& slopes, double scale) {
    cpu::Context ctx;
    Matrix<T> const q = in.q.cast<T>(), k = in.k.cast<T>(), v = in.v.cast<T>(), dy = dout.cast<T>();
    Matrix<T> out(q.rows(), q.cols()), probs(Index(s.batch) * s.heads * s.seq, s.seq);
    std::vector<T> slopes_t(slopes.begin(), slopes.end());
    cpu::attention_forward<T>(ctx, as_view(q), as_view(k), as_view(v), as_view(out), as_view(probs), s,
                              slopes.empty() ? nullptr : slopes_t.data(), T(scale));
    Matrix<T> dq = Matrix<T>::Zero(q.rows(), q.cols()), dk = Matrix<T>::Zero(k.rows(), k.cols());
    Matrix<T> dv = Matrix<T>::Zero(v.rows(), v.cols());
    cpu::attention_backward<T>(ctx, as_view(dy), as_view(q), as_view(k), as_view(v), as_view(std::as_const(probs)),
                               as_view(dq), as_view(dk), as_view(dv), s, T(scale));
    return {dq.template cast<double>(), dk.template cast<double>(), dv.template cast<double>()};
}

double max_abs_diff(Matrix<double> const& a, Matrix<double> const& b) { return (a - b).cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("attention_forward matches the naive causal softmax loop", "[attention]") {
    // seq 150 spans three row blocks of the op; kv_heads 2 of 6 exercises GQA.
    for (auto const& s : {AttentionShape{2, 150, 6, 2, 8}, AttentionShape{1, 7, 4, 4, 5}}) {
        Inputs const in = make_inputs(s, 31);
        double const scale = 1.0 / std::sqrt(double(s.head_dim));
        std::vector<double> slopes;
        for (int h = 0; h < s.heads; ++h) slopes.push_back(0.5 / (h + 1));
        for (bool alibi : {false, true}) {
            std::vector<double> const used = alibi ? slopes : std::vector<double>{};
            Result const expected = naive_attention(in, s, used, scale);
            Result const actual = run_forward<double>(in, s, used, scale);
            INFO("seq " << s.seq << ", alibi " << alibi);
            CHECK(max_abs_diff(actual.out, expected.out) < 1e-12);
            CHECK(max_abs_diff(actual.probs, expected.probs) < 1e-12);
        }
    }
}

TEST_CASE("attention probs are causal, sum to 1, and ALiBi changes them", "[attention]") {
    AttentionShape const s{2, 70, 4, 2, 4};
    Inputs const in = make_inputs(s, 41);
    Result const plain = run_forward<double>(in, s, {}, 0.5);
    Result const alibi = run_forward<double>(in, s, {0.5, 0.25, 0.125, 0.0625}, 0.5);
    for (Result const* r : {&plain, &alibi}) {
        for (Index row = 0; row < r->probs.rows(); ++row) {
            Index const i = row % s.seq;
            CHECK(std::abs(r->probs.row(row).sum() - 1.0) < 1e-12);
            if (i + 1 < s.seq) CHECK(r->probs.row(row).tail(s.seq - i - 1).cwiseAbs().maxCoeff() == 0.0);  // exactly 0
            CHECK(r->probs.row(row).head(i + 1).minCoeff() > 0.0);
        }
    }
    CHECK(max_abs_diff(plain.probs, alibi.probs) > 1e-3);
    CHECK(max_abs_diff(plain.out, alibi.out) > 1e-3);
    // The first token sees only itself, with or without ALiBi.
    CHECK(alibi.probs(0, 0) == 1.0);
}

TEST_CASE("grouped-query attention equals full attention with repeated kv heads", "[attention]") {
    // Large enough for the op's multi-threaded path, where the heads of a group share dk and dv.
    AttentionShape const gqa{2, 70, 6, 2, 4};
    AttentionShape const mha{2, 70, 6, 6, 4};
    Inputs const in = make_inputs(gqa, 51);
    Inputs repeated{in.q, Matrix<double>(in.q.rows(), in.q.cols()), Matrix<double>(in.q.rows(), in.q.cols())};
    for (int h = 0; h < 6; ++h) {
        repeated.k.middleCols(h * 4, 4) = in.k.middleCols((h / 3) * 4, 4);
        repeated.v.middleCols(h * 4, 4) = in.v.middleCols((h / 3) * 4, 4);
    }
    std::vector<double> const slopes{0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625};
    Result const a = run_forward<double>(in, gqa, slopes, 0.5);
    Result const b = run_forward<double>(repeated, mha, slopes, 0.5);
    CHECK(max_abs_diff(a.out, b.out) < 1e-12);
    CHECK(max_abs_diff(a.probs, b.probs) < 1e-12);

    Matrix<double> const dout = random_matrix<double>(in.q.rows(), in.q.cols(), 52);
    Grads const ga = run_backward<double>(in, dout, gqa, slopes, 0.5);
    Grads const gb = run_backward<double>(repeated, dout, mha, slopes, 0.5);
    CHECK(max_abs_diff(ga.dq, gb.dq) < 1e-12);
    // A shared kv head's gradient is the sum over the query heads that read it.
    Matrix<double> dk_sum = Matrix<double>::Zero(in.k.rows(), in.k.cols()), dv_sum = dk_sum;
    for (int h = 0; h < 6; ++h) {
        dk_sum.middleCols((h / 3) * 4, 4) += gb.dk.middleCols(h * 4, 4);
        dv_sum.middleCols((h / 3) * 4, 4) += gb.dv.middleCols(h * 4, 4);
    }
    CHECK(max_abs_diff(ga.dk, dk_sum) < 1e-12);
    CHECK(max_abs_diff(ga.dv, dv_sum) < 1e-12);
}

TEST_CASE("attention_backward adds into its outputs and skips null ones", "[attention]") {
    AttentionShape const s{2, 6, 4, 2, 3};
    Inputs const in = make_inputs(s, 61);
    Matrix<double> const dout = random_matrix<double>(in.q.rows(), in.q.cols(), 62);
    Grads const fresh = run_backward<double>(in, dout, s, {}, 0.7);

    cpu::Context ctx;
    Matrix<double> out(in.q.rows(), in.q.cols()), probs(2 * 4 * 6, 6);
    cpu::attention_forward<double>(ctx, as_view(in.q), as_view(in.k), as_view(in.v), as_view(out), as_view(probs), s,
                                   nullptr, 0.7);
    Matrix<double> dq = random_matrix<double>(in.q.rows(), in.q.cols(), 63);
    Matrix<double> dv = random_matrix<double>(in.v.rows(), in.v.cols(), 64);
    Matrix<double> const dq0 = dq, dv0 = dv;
    cpu::attention_backward<double>(ctx, as_view(dout), as_view(in.q), as_view(in.k), as_view(in.v),
                                    as_view(std::as_const(probs)), as_view(dq), View<double>{}, as_view(dv), s, 0.7);
    CHECK(max_abs_diff(dq, dq0 + fresh.dq) < 1e-12);
    CHECK(max_abs_diff(dv, dv0 + fresh.dv) < 1e-12);
}

TEST_CASE("attention in fp32 agrees with fp64 (out, probs 1e-5; gradients 2e-5)", "[attention]") {
    AttentionShape const s{2, 100, 4, 2, 16};
    Inputs const in = make_inputs(s, 71);
    std::vector<double> const slopes{0.5, 0.25, 0.125, 0.0625};
    double const scale = 0.25;
    Result const r64 = run_forward<double>(in, s, slopes, scale);
    Result const r32 = run_forward<float>(in, s, slopes, scale);
    double const out_error = max_abs_diff(r32.out, r64.out);
    double const probs_error = max_abs_diff(r32.probs, r64.probs);
    INFO("fp32 max abs error: out " << out_error << ", probs " << probs_error);
    CHECK(out_error < 1e-5);
    CHECK(probs_error < 1e-5);

    Matrix<double> const dout = random_matrix<double>(in.q.rows(), in.q.cols(), 72);
    Grads const g64 = run_backward<double>(in, dout, s, slopes, scale);
    Grads const g32 = run_backward<float>(in, dout, s, slopes, scale);
    double const dq_error = max_abs_diff(g32.dq, g64.dq);
    double const dk_error = max_abs_diff(g32.dk, g64.dk);
    double const dv_error = max_abs_diff(g32.dv, g64.dv);
    INFO("fp32 max abs error: dq " << dq_error << ", dk " << dk_error << ", dv " << dv_error);
    CHECK(dq_error < 2e-5);
    CHECK(dk_error < 2e-5);
    CHECK(dv_error < 2e-5);
}

TEST_CASE("attention rejects bad input with a clear message", "[attention][errors]") {
    cpu::Context ctx;
    AttentionShape const s{2, 4, 4, 2, 3};
    Inputs const in = make_inputs(s, 81);
    Matrix<double> out(8, 12), probs(2 * 4 * 4, 4);
    auto forward = [&](AttentionShape const& shape, View<double const> q, View<double> p) {
        cpu::attention_forward<double>(ctx, q, as_view(in.k), as_view(in.v), as_view(out), p, shape, nullptr, 1.0);
    };
    REQUIRE_NOTHROW(forward(s, as_view(in.q), as_view(probs)));
    REQUIRE_THROWS_WITH(forward({2, 4, 4, 3, 3}, as_view(in.q), as_view(probs)),
                        Catch::Contains("heads (4) must be a multiple of kv_heads (3)"));
    REQUIRE_THROWS_WITH(forward({0, 4, 4, 2, 3}, as_view(in.q), as_view(probs)), Catch::Contains("empty batch"));
    REQUIRE_THROWS_WITH(forward({2, 0, 4, 2, 3}, as_view(in.q), as_view(probs)), Catch::Contains("empty batch"));
    Matrix<double> const narrow_q(8, 9);
    REQUIRE_THROWS_WITH(forward(s, as_view(narrow_q), as_view(probs)),
                        Catch::Contains("q (batch*seq, heads*head_dim): expected shape (8, 12), got (8, 9)"));
    Matrix<double> short_probs(8, 4);
    REQUIRE_THROWS_WITH(forward(s, as_view(in.q), as_view(short_probs)),
                        Catch::Contains("probs (batch*heads*seq, seq): expected shape (32, 4), got (8, 4)"));
    REQUIRE_THROWS_WITH(forward({2, 5, 4, 2, 3}, as_view(in.q), as_view(probs)),
                        Catch::Contains("expected shape (10, 12)"));

    Matrix<double> dq(8, 12), wrong_dk(8, 12);
    REQUIRE_THROWS_WITH(cpu::attention_backward<double>(ctx, as_view(in.q), as_view(in.q), as_view(in.k), as_view(in.v),
                                                        as_view(std::as_const(probs)), as_view(dq), as_view(wrong_dk),
                                                        View<double>{}, s, 1.0),
                        Catch::Contains("dk (batch*seq, kv_heads*head_dim): expected shape (8, 6), got (8, 12)"));
    REQUIRE_THROWS_WITH(cpu::attention_backward<double>(ctx, as_view(in.q), as_view(in.q), as_view(in.k), as_view(in.v),
                                                        as_view(std::as_const(probs)), as_view(dq), View<double>{},
                                                        View<double>{}, {2, 4, 4, 3, 3}, 1.0),
                        Catch::Contains("must be a multiple of kv_heads"));
}
