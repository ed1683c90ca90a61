/// @file tests/unit/alibi.cpp
/// @brief ALiBi slopes against values worked out by hand from BLOOM's build_alibi_tensor formula.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/layers/alibi.hpp"

using namespace polyalpaca;

namespace {

void check_slopes(std::vector<double> const& actual, std::vector<double> const& expected) {
    REQUIRE(actual.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("head " << i);
        CHECK(actual[i] == Approx(expected[i]).epsilon(1e-15));
    }
}

}  // namespace

TEST_CASE("alibi slopes for a power-of-two head count", "[alibi]") {
    // 8 heads: closest power of two p = 8, base = 2^(-(2^-(log2 8 - 3))) = 2^-1, slopes base^1..base^8.
    check_slopes(alibi_slopes(8), {1.0 / 2, 1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32, 1.0 / 64, 1.0 / 128, 1.0 / 256});
    // 16 heads: base = 2^(-(2^-(4 - 3))) = 2^-0.5, slopes 2^-0.5, 2^-1, ..., 2^-8.
    std::vector<double> sixteen;
    for (int k = 1; k <= 16; ++k) sixteen.push_back(std::pow(2.0, -0.5 * k));
    check_slopes(alibi_slopes(16), sixteen);
    check_slopes(alibi_slopes(1), {1.0 / 256});  // p = 1: base = 2^(-(2^-(0 - 3))) = 2^-8
}

TEST_CASE("alibi slopes for a head count that is not a power of two", "[alibi]") {
    // 12 heads: p = 8 gives 1/2 .. 1/256 as above. The 4 extra heads use extra_base = 2^(-(2^-(log2 16 - 3)))
    // = 2^-0.5 raised to the odd powers 1, 3, 5, 7 (arange(1, 1 + 2*4, 2)).
    check_slopes(alibi_slopes(12), {1.0 / 2, 1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32, 1.0 / 64, 1.0 / 128, 1.0 / 256,
                                    std::sqrt(0.5), std::sqrt(0.5) / 2, std::sqrt(0.5) / 4, std::sqrt(0.5) / 8});
    // 6 heads: p = 4, base = 2^(-(2^-(2 - 3))) = 2^-2 -> 1/4, 1/16, 1/64, 1/256; extra_base = 2^-1 with
    // powers 1, 3 -> 1/2, 1/8.
    check_slopes(alibi_slopes(6), {1.0 / 4, 1.0 / 16, 1.0 / 64, 1.0 / 256, 1.0 / 2, 1.0 / 8});
}

TEST_CASE("alibi slopes reject a non-positive head count", "[alibi][errors]") {
    REQUIRE_THROWS_WITH(alibi_slopes(0), Catch::Contains("heads must be positive"));
}
