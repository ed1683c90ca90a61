// The held-out validation set: taken before any strategy, disjoint from training, shared ids across languages.
#include <polyalpaca/data/mixture_split.hpp>

#include <algorithm>
#include <random>
#include <set>

#include <catch2/catch.hpp>

#include "unit/mixture_corpus.hpp"

namespace pa = polyalpaca;
using pa::testing::four_languages;

namespace {
std::set<std::string> ids(pa::LanguagePool const& pool) {
    std::set<std::string> out;
    for (auto const& e : pool.examples) out.insert(e.id);
    return out;
}
}  // namespace

TEST_CASE("defaults are the paper's: 1000 records per language, seed 42, shared ids", "[mixture][validation]") {
    pa::ValidationOptions const opt;
    CHECK(opt.size == 1000);
    CHECK(opt.seed == 42);
    CHECK(opt.shared_ids);

    auto const pools = four_languages(3000);
    auto const split = pa::split_validation(pools, opt);
    REQUIRE(split.train.size() == 4);
    REQUIRE(split.validation.size() == 4);
    auto const held = ids(split.validation[0]);
    CHECK(held.size() == 1000);
    for (std::size_t l = 0; l < 4; ++l) {
        CHECK(split.validation[l].lang == pools[l].lang);
        CHECK(split.train[l].size() == 2000);
        CHECK(ids(split.validation[l]) == held);  // like for like across languages
        auto const train = ids(split.train[l]);
        for (auto const& id : held) CHECK_FALSE(train.count(id));
        // The caller's order and indices are kept.
        CHECK(std::is_sorted(split.train[l].examples.begin(), split.train[l].examples.end(),
                             [](auto const& a, auto const& b) { return a.index < b.index; }));
    }
}

TEST_CASE("the held-out draw depends on the seed and the ids, not on record order", "[mixture][validation]") {
    auto pools = four_languages(200);
    pa::ValidationOptions opt;
    opt.size = 20;
    auto const a = pa::split_validation(pools, opt);
    auto shuffled = pools;
    std::mt19937 gen(3);
    for (auto& p : shuffled) std::shuffle(p.examples.begin(), p.examples.end(), gen);
    auto const b = pa::split_validation(shuffled, opt);
    CHECK(ids(a.validation[2]) == ids(b.validation[2]));

    opt.seed = 43;
    CHECK(ids(pa::split_validation(pools, opt).validation[0]) != ids(a.validation[0]));

    // A run over fewer languages of parallel data holds out the same records.
    auto const two =
        pa::split_validation(pa::select_languages(pools, {"zh", "de"}), pa::ValidationOptions{20, 42, true});
    CHECK(ids(two.validation[0]) == ids(a.validation[0]));
}

TEST_CASE("per-language draws differ between languages", "[mixture][validation]") {
    auto const pools = four_languages(200);
    pa::ValidationOptions opt;
    opt.size = 20;
    opt.shared_ids = false;
    auto const split = pa::split_validation(pools, opt);
    CHECK(ids(split.validation[0]).size() == 20);
    CHECK(ids(split.validation[0]) != ids(split.validation[1]));
    CHECK(split.train[3].size() == 180);
}

TEST_CASE("shared ids come from the ids every language has", "[mixture][validation]") {
    auto pools = four_languages(100);
    pools[1].examples.erase(pools[1].examples.begin(), pools[1].examples.begin() + 30);  // de lacks r0..r29
    pa::ValidationOptions opt;
    opt.size = 50;
    auto const split = pa::split_validation(pools, opt);
    for (auto const& id : ids(split.validation[0])) CHECK(std::stoi(id.substr(1)) >= 30);
    CHECK(split.train[0].size() == 50);
    CHECK(split.train[1].size() == 20);

    opt.size = 71;
    CHECK_THROWS_WITH(pa::split_validation(pools, opt), Catch::Contains("71") && Catch::Contains("only 70"));
    opt.size = 70;
    CHECK_THROWS_WITH(pa::split_validation(pools, opt), Catch::Contains("'de'") && Catch::Contains("none is left"));
}

TEST_CASE("size 0 holds nothing out", "[mixture][validation]") {
    auto const pools = four_languages(10);
    auto const split = pa::split_validation(pools, pa::ValidationOptions{0, 42, true});
    CHECK(split.validation.empty());
    CHECK(split.train[0].size() == 10);
}
