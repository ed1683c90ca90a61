/// @file tests/gradcheck/attention.cpp
/// @brief attention_backward against central differences of attention_forward in fp64 (scaled error <= 1e-6).
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu/attention.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

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

void check_attention_gradients(AttentionShape const& s, std::vector<double> const& slopes, double scale) {
    cpu::Context ctx;
    Index const n = Index(s.batch) * s.seq;
    Matrix<double> q = random_matrix<double>(n, s.heads * s.head_dim, 91);
    Matrix<double> k = random_matrix<double>(n, s.kv_heads * s.head_dim, 92);
    Matrix<double> v = random_matrix<double>(n, s.kv_heads * s.head_dim, 93);
    Matrix<double> const w = random_matrix<double>(n, s.heads * s.head_dim, 94);
    Matrix<double> out(n, s.heads * s.head_dim), probs(Index(s.batch) * s.heads * s.seq, s.seq);
    double const* alibi = slopes.empty() ? nullptr : slopes.data();
    auto loss = [&] {
        cpu::attention_forward<double>(ctx, as_view(q), as_view(k), as_view(v), as_view(out), as_view(probs), s, alibi,
                                       scale);
        return weighted_sum<double>(out, w);
    };
    loss();
    Matrix<double> dq = Matrix<double>::Zero(q.rows(), q.cols());
    Matrix<double> dk = Matrix<double>::Zero(k.rows(), k.cols());
    Matrix<double> dv = Matrix<double>::Zero(v.rows(), v.cols());
    cpu::attention_backward<double>(ctx, as_view(w), as_view(q), as_view(k), as_view(v), as_view(std::as_const(probs)),
                                    as_view(dq), as_view(dk), as_view(dv), s, scale);
    check_gradient("dq", span_of(dq), loss, span_of(q), 1e-6);
    check_gradient("dk", span_of(dk), loss, span_of(k), 1e-6);
    check_gradient("dv", span_of(dv), loss, span_of(v), 1e-6);
}

}  // namespace

TEST_CASE("attention gradients match finite differences (GQA, batch 2)", "[attention][gradcheck]") {
    check_attention_gradients({2, 5, 4, 2, 3}, {}, 0.6);
}

TEST_CASE("attention gradients match finite differences with ALiBi", "[attention][gradcheck]") {
    check_attention_gradients({2, 5, 4, 2, 3}, {0.5, 0.25, 0.125, 0.0625}, 0.6);
    check_attention_gradients({2, 4, 2, 2, 3}, {0.7, 0.3}, 1.0);  // plain multi-head
}

TEST_CASE("attention gradients match finite differences across row blocks", "[attention][gradcheck]") {
    // seq 70 crosses the op's 64-row block; kv_heads 1 is multi-query attention.
    check_attention_gradients({2, 70, 2, 1, 2}, {0.25, 0.0625}, 0.7);
}
