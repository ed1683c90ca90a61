/// @file tests/gradcheck/cross_entropy.cpp
/// @brief fp64 gradient check of cross_entropy's dlogits against central differences of the mean loss.
#include <cstdint>
#include <vector>

#include "polyalpaca/backend/cpu/loss.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {
constexpr double tolerance = 1e-8;  // max scaled error
constexpr int ignore_index = -100;
}  // namespace

TEST_CASE("cross_entropy: dlogits with grad_scale 1/count is the gradient of the mean loss", "[gradcheck][loss]") {
    cpu::Context ctx;
    Index const n = 6;
    Index const vocab = 5;
    std::vector<std::int32_t> const targets = {2, ignore_index, 0, 4, ignore_index, 4};
    auto logits = random_matrix<double>(n, vocab, 81, 3.0);

    auto mean_loss = [&] {
        LossSum const loss = cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, View<double>{}, 1.0);
        return loss.sum / double(loss.count);
    };
    Matrix<double> dlogits = Matrix<double>::Constant(n, vocab, 42.0);  // written, not added to
    LossSum const loss =
        cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, view<double>(dlogits), 1.0 / 4.0);
    REQUIRE(loss.count == 4);
    check_gradient("dlogits", span_of(dlogits), mean_loss, span_of(logits), tolerance);
}
