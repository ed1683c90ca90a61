// group_by_length against transformers' LengthGroupedSampler (tools/make_study_golden.py): given the permutation
// torch.randperm drew, our grouping must give HF's order exactly.
#include <polyalpaca/data/batching_length_grouped.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;

TEST_CASE("length grouping matches HF's get_length_grouped_indices", "[batching][golden]") {
    std::ifstream in(pa::testing::golden_dir() / "study" / "length_grouped.json");
    REQUIRE(in.good());
    auto const golden = nlohmann::json::parse(in);
    int cases = 0;
    for (auto const& c : golden["cases"]) {
        INFO(c["name"].get<std::string>());
        auto const lengths = c["lengths"].get<std::vector<std::int64_t>>();
        auto const permutation = c["permutation"].get<std::vector<std::size_t>>();
        auto const want = c["order"].get<std::vector<std::size_t>>();
        std::optional<std::size_t> mult;
        if (!c["mega_batch_mult"].is_null()) mult = c["mega_batch_mult"].get<std::size_t>();
        auto const got = pa::length_grouped_from_permutation(lengths, permutation, c["batch_size"], mult);
        CHECK(got == want);
        ++cases;
    }
    CHECK(cases == 7);
}

TEST_CASE("length grouping refuses a bad permutation", "[batching]") {
    CHECK_THROWS_WITH(pa::length_grouped_from_permutation({3, 1}, {0}, 2), Catch::Contains("1 indices for 2 lengths"));
    CHECK_THROWS_WITH(pa::length_grouped_from_permutation({3, 1}, {0, 2}, 2), Catch::Contains("index 2"));
    CHECK_THROWS_WITH(pa::length_grouped_from_permutation({3, 1}, {0, 1}, 0), Catch::Contains("batch size"));
    CHECK(pa::length_grouped_from_permutation({}, {}, 4).empty());
}
