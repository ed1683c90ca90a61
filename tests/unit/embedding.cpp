/// @file tests/unit/embedding.cpp
/// @brief embedding_forward/backward: values against a naive loop, fp32 agreement, accumulation, bad input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "polyalpaca/backend/cpu/embedding.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

/// dtable_ref[ids[i]] += dout[i], written out as plain loops.
Matrix<double> reference_backward(std::vector<std::int32_t> const& ids, Matrix<double> const& dout, Index vocab) {
    Matrix<double> dtable = Matrix<double>::Zero(vocab, dout.cols());
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (Index j = 0; j < dout.cols(); ++j) dtable(ids[i], j) += dout(Index(i), j);
    return dtable;
}

}  // namespace

TEST_CASE("embedding_forward copies the table row of every id", "[unit][embedding]") {
    cpu::Context ctx;
    Index const vocab = 6;
    Index const dim = 5;
    std::vector<std::int32_t> const ids = {5, 0, 2, 2, 4};
    auto table = random_matrix<double>(vocab, dim, 1);
    Matrix<double> out = Matrix<double>::Constant(Index(ids.size()), dim, -7.0);
    cpu::embedding_forward(ctx, ids, view<double>(table), view<double>(out));
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (Index j = 0; j < dim; ++j) REQUIRE(out(Index(i), j) == table(ids[i], j));
}

TEST_CASE("embedding_forward over many rows (threaded path) copies every row", "[unit][embedding]") {
    cpu::Context ctx;
    Index const vocab = 50;
    Index const dim = 512;
    Index const n = 300;  // n * dim above the parallel threshold
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    Rng rng(2);
    for (auto& id : ids) id = std::int32_t(rng.below(std::uint64_t(vocab)));
    auto table = random_matrix<double>(vocab, dim, 3);
    Matrix<double> out(n, dim);
    cpu::embedding_forward(ctx, ids, view<double>(table), view<double>(out));
    double worst = 0;
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < dim; ++j) worst = std::max(worst, std::abs(out(i, j) - table(ids[std::size_t(i)], j)));
    REQUIRE(worst == 0.0);
}

TEST_CASE("embedding fp32 agrees with fp64 (tolerance 1e-7 scaled: input rounding only)", "[unit][embedding]") {
    cpu::Context ctx;
    std::vector<std::int32_t> const ids = {1, 3, 3, 0};
    auto table = random_matrix<double>(4, 6, 4);
    auto dout = random_matrix<double>(4, 6, 5);
    Matrix<double> out(4, 6);
    Matrix<double> dtable = Matrix<double>::Zero(4, 6);
    cpu::embedding_forward(ctx, ids, view<double>(table), view<double>(out));
    cpu::embedding_backward(ctx, ids, view<double>(dout), view<double>(dtable));

    Matrix<float> table_f = table.cast<float>();
    Matrix<float> dout_f = dout.cast<float>();
    Matrix<float> out_f(4, 6);
    Matrix<float> dtable_f = Matrix<float>::Zero(4, 6);
    cpu::embedding_forward(ctx, ids, view<float>(table_f), view<float>(out_f));
    cpu::embedding_backward(ctx, ids, view<float>(dout_f), view<float>(dtable_f));

    Matrix<double> out_fd = out_f.cast<double>();
    Matrix<double> dtable_fd = dtable_f.cast<double>();
    CHECK(max_scaled_error(span_of(out_fd), span_of(out)) <= 1e-7);
    CHECK(max_scaled_error(span_of(dtable_fd), span_of(dtable)) <= 1e-7);
}

TEST_CASE("embedding_backward scatter-adds rows, and adds again on a second call", "[unit][embedding]") {
    cpu::Context ctx;
    Index const vocab = 5;
    std::vector<std::int32_t> const ids = {4, 1, 4, 0, 4};
    auto dout = random_matrix<double>(Index(ids.size()), 3, 6);
    Matrix<double> const expected = reference_backward(ids, dout, vocab);

    Matrix<double> dtable = Matrix<double>::Zero(vocab, 3);
    cpu::embedding_backward(ctx, ids, view<double>(dout), view<double>(dtable));
    CHECK((dtable - expected).cwiseAbs().maxCoeff() <= 1e-14);
    CHECK(dtable.row(2).isZero(0.0));  // id 2 never appears
    cpu::embedding_backward(ctx, ids, view<double>(dout), view<double>(dtable));
    CHECK((dtable - 2.0 * expected).cwiseAbs().maxCoeff() <= 1e-14);
}

TEST_CASE("embedding_backward with a null dtable does nothing", "[unit][embedding]") {
    cpu::Context ctx;
    std::vector<std::int32_t> const ids = {0, 1};
    auto dout = random_matrix<double>(2, 3, 7);
    REQUIRE_NOTHROW(cpu::embedding_backward(ctx, ids, view<double>(dout), View<double>{}));
}

TEST_CASE("embedding rejects bad ids and shapes with a message", "[unit][embedding]") {
    cpu::Context ctx;
    auto table = random_matrix<double>(6, 4, 8);
    Matrix<double> out(3, 4);
    auto forward = [&](std::vector<std::int32_t> const& ids, Matrix<double>& y) {
        cpu::embedding_forward(ctx, ids, view<double>(table), view<double>(y));
    };

    std::vector<std::int32_t> const too_large = {1, 6, 2};
    REQUIRE_THROWS_AS(forward(too_large, out), Error);
    REQUIRE_THROWS_WITH(forward(too_large, out), Catch::Contains("token id 6 at position 1"));

    std::vector<std::int32_t> const negative = {0, 2, -3};
    REQUIRE_THROWS_AS(forward(negative, out), Error);
    REQUIRE_THROWS_WITH(forward(negative, out), Catch::Contains("token id -3 at position 2"));

    std::vector<std::int32_t> const empty;
    Matrix<double> no_rows(0, 4);
    REQUIRE_THROWS_AS(forward(empty, no_rows), Error);
    REQUIRE_THROWS_WITH(forward(empty, no_rows), Catch::Contains("ids is empty"));

    std::vector<std::int32_t> const ids = {0, 1, 2};
    Matrix<double> wrong_cols(3, 5);
    REQUIRE_THROWS_AS(forward(ids, wrong_cols), Error);
    REQUIRE_THROWS_WITH(forward(ids, wrong_cols), Catch::Contains("embedding_forward: out"));
    Matrix<double> wrong_rows(2, 4);
    REQUIRE_THROWS_WITH(forward(ids, wrong_rows), Catch::Contains("embedding_forward: out"));

    Matrix<double> dtable = Matrix<double>::Zero(6, 4);
    auto dout = random_matrix<double>(3, 4, 9);
    auto backward = [&](std::vector<std::int32_t> const& i, Matrix<double> const& dy, Matrix<double>& dt) {
        cpu::embedding_backward(ctx, i, view<double>(dy), view<double>(dt));
    };
    REQUIRE_THROWS_AS(backward(too_large, dout, dtable), Error);
    REQUIRE_THROWS_WITH(backward(too_large, dout, dtable), Catch::Contains("token id 6 at position 1"));
    REQUIRE_THROWS_WITH(backward(empty, dout, dtable), Catch::Contains("ids is empty"));
    auto short_dout = random_matrix<double>(2, 4, 10);
    REQUIRE_THROWS_WITH(backward(ids, short_dout, dtable), Catch::Contains("embedding_backward: dout"));
    Matrix<double> narrow_dtable = Matrix<double>::Zero(6, 3);
    REQUIRE_THROWS_AS(backward(ids, dout, narrow_dtable), Error);
    REQUIRE_THROWS_WITH(backward(ids, dout, narrow_dtable), Catch::Contains("embedding_backward: dtable"));
    CHECK(dtable.isZero(0.0));  // nothing was written before the checks threw
}
