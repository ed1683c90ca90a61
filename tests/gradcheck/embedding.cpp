/// @file tests/gradcheck/embedding.cpp
/// @brief fp64 gradient check of embedding_backward against central differences of sum(w * out).
#include <cstdint>
#include <vector>

#include "polyalpaca/backend/cpu/embedding.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {
constexpr double tolerance = 1e-8;  // max scaled error; embedding is linear in the table, so differences are exact
}

TEST_CASE("embedding: table gradient matches central differences, repeated ids included", "[gradcheck][embedding]") {
    cpu::Context ctx;
    Index const vocab = 7;
    Index const dim = 4;
    std::vector<std::int32_t> const ids = {3, 0, 6, 3, 2, 3};  // id 3 three times, ids 1, 4, 5 unused
    Index const n = Index(ids.size());
    auto table = random_matrix<double>(vocab, dim, 11);
    auto weights = random_matrix<double>(n, dim, 12);

    auto loss = [&] {
        Matrix<double> out(n, dim);
        cpu::embedding_forward(ctx, ids, view<double>(table), view<double>(out));
        return weighted_sum<double>(out, weights);
    };
    Matrix<double> dtable = Matrix<double>::Zero(vocab, dim);
    cpu::embedding_backward(ctx, ids, view<double>(weights), view<double>(dtable));
    check_gradient("dtable", span_of(dtable), loss, span_of(table), tolerance);
}
