// Mixing strategies: which records each epoch uses, per-language counts, per-epoch reshuffling, determinism.
#include <polyalpaca/data/mixture.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <catch2/catch.hpp>

#include "unit/mixture_corpus.hpp"

namespace pa = polyalpaca;
using pa::testing::four_languages;
using pa::testing::ids_of;
using pa::testing::occurrences;

TEST_CASE("monolingual: every record of the language once per epoch, reshuffled every epoch", "[mixture]") {
    auto const pools = four_languages(50);
    auto const mono = pa::Mixture::monolingual(pools, "ru", 7);
    REQUIRE(mono.pools().size() == 1);
    CHECK(mono.pools()[0].lang == "ru");
    auto const e0 = mono.plan(0), e1 = mono.plan(1);
    for (auto const* plan : {&e0, &e1}) {
        REQUIRE(plan->size() == 50);
        CHECK(plan->counts == std::vector<std::size_t>{50});
        auto const seen = occurrences(plan->order);
        CHECK(seen.size() == 50);
        CHECK(std::all_of(seen.begin(), seen.end(), [](auto const& kv) { return kv.second == 1; }));
    }
    CHECK(e0.order != e1.order);
    CHECK(pa::Mixture::monolingual(pools, "ru", 7).plan(1).order == e1.order);  // a function of (seed, epoch)
    CHECK(pa::Mixture::monolingual(pools, "ru", 8).plan(1).order != e1.order);
    CHECK_THROWS_WITH(pa::Mixture::monolingual(pools, "fi", 7), Catch::Contains("'fi'") && Catch::Contains("en, de"));
}

TEST_CASE("multilingual: the union of the languages, N * M records, shuffled together", "[mixture]") {
    auto const pools = four_languages(40);
    auto const multi = pa::Mixture::multilingual(pools, 3);
    auto const plan = multi.plan(2);
    REQUIRE(plan.size() == 160);
    CHECK(plan.counts == std::vector<std::size_t>{40, 40, 40, 40});
    auto const seen = occurrences(plan.order);
    CHECK(seen.size() == 160);
    // Shuffled together: the first quarter is not all one language.
    std::set<std::uint32_t> first_quarter;
    for (std::size_t i = 0; i < 40; ++i) first_quarter.insert(plan.order[i].pool);
    CHECK(first_quarter.size() > 1);
    CHECK(multi.plan(2).order == plan.order);
    CHECK(multi.plan(3).order != plan.order);
    CHECK(multi.shares() == std::vector<double>{0.25, 0.25, 0.25, 0.25});
}

TEST_CASE("downsampled with shared ids: M/N records per language, the same ids in every language", "[mixture]") {
    auto const pools = four_languages(40);
    pa::DownsampleOptions opt;  // shared ids, M = 40
    auto const down = pa::Mixture::downsampled(pools, opt, 11);
    auto const e0 = down.plan(0), e3 = down.plan(3);
    CHECK(e0.size() == 40);
    CHECK(e0.counts == std::vector<std::size_t>{10, 10, 10, 10});
    auto const ids = ids_of(down.pools(), e0.order, 0);
    CHECK(ids.size() == 10);
    for (std::uint32_t l = 1; l < 4; ++l) CHECK(ids_of(down.pools(), e0.order, l) == ids);
    // The selection is fixed by the seed; only the order changes between epochs.
    CHECK(occurrences(e3.order) == occurrences(e0.order));
    CHECK(e3.order != e0.order);
    CHECK(ids_of(down.pools(), pa::Mixture::downsampled(pools, opt, 12).plan(0).order, 0) != ids);
}

TEST_CASE("downsampled with disjoint ids: every id used by exactly one language, all content once", "[mixture]") {
    auto const pools = four_languages(40);
    pa::DownsampleOptions opt;
    opt.ids = pa::SampleIds::Disjoint;
    auto const down = pa::Mixture::downsampled(pools, opt, 11);
    auto const plan = down.plan(0);
    CHECK(plan.counts == std::vector<std::size_t>{10, 10, 10, 10});
    std::set<std::string> all;
    std::size_t total = 0;
    for (std::uint32_t l = 0; l < 4; ++l) {
        auto const ids = ids_of(down.pools(), plan.order, l);
        total += ids.size();
        all.insert(ids.begin(), ids.end());
    }
    CHECK(total == 40);
    CHECK(all.size() == 40);  // 40 distinct ids over 4 languages: every id of the 40 exactly once
}

TEST_CASE("downsampled: M not divisible by N, and languages of unequal size", "[mixture]") {
    auto pools = four_languages(40);
    pa::DownsampleOptions opt;
    opt.total = 10;  // 10 over 4 languages: 3, 3, 2, 2 (the first M mod N languages get one more)
    auto const shared = pa::Mixture::downsampled(pools, opt, 5).plan(0);
    CHECK(shared.counts == std::vector<std::size_t>{3, 3, 2, 2});
    auto const& sp = pools;
    auto const en = ids_of(sp, shared.order, 0), zh = ids_of(sp, shared.order, 3);
    CHECK(ids_of(sp, shared.order, 1) == en);
    CHECK(std::includes(en.begin(), en.end(), zh.begin(), zh.end()));  // the two-record languages share en's first two

    opt.ids = pa::SampleIds::Disjoint;
    auto const disjoint = pa::Mixture::downsampled(pools, opt, 5).plan(0);
    CHECK(disjoint.counts == std::vector<std::size_t>{3, 3, 2, 2});

    // zh lost its last 15 records: M defaults to the smallest language (25), 7/6/6/6 records.
    pools[3].examples.resize(25);
    opt.total.reset();
    auto const uneven = pa::Mixture::downsampled(pools, opt, 5).plan(0);
    CHECK(uneven.counts == std::vector<std::size_t>{7, 6, 6, 6});
    std::set<std::string> used;
    for (std::uint32_t l = 0; l < 4; ++l)
        for (auto const& id : ids_of(pools, uneven.order, l)) CHECK(used.insert(id).second);

    // Shared ids come from the ids every language has; too many asked for is refused.
    opt.ids = pa::SampleIds::Shared;
    opt.total = 4 * 26;
    CHECK_THROWS_WITH(pa::Mixture::downsampled(pools, opt, 5), Catch::Contains("26 ids present in every language"));
    // Disjoint: en alone has r25..r39; 40 + 3 * 25 ids in all, but asking 4 * 20 from languages where zh only has 25
    // ids works, while 4 * 24 = 96 > 40 distinct ids cannot.
    opt.ids = pa::SampleIds::Disjoint;
    opt.total = 80;
    CHECK_THROWS_WITH(pa::Mixture::downsampled(pools, opt, 5), Catch::Contains("disjoint-id downsampling"));
    opt.total = 3;
    CHECK_THROWS_WITH(pa::Mixture::downsampled(pools, opt, 5), Catch::Contains("leaves some language with none"));
}

TEST_CASE("temperature: p_l proportional to n_l^(1/T)", "[mixture]") {
    std::vector<std::size_t> const sizes{100, 400, 900};
    auto const t1 = pa::temperature_probabilities(sizes, 1.0);
    CHECK(t1[0] == Approx(100.0 / 1400).epsilon(1e-14));
    CHECK(t1[2] == Approx(900.0 / 1400).epsilon(1e-14));
    auto const t2 = pa::temperature_probabilities(sizes, 2.0);  // sqrt: 10, 20, 30
    CHECK(t2[0] == Approx(10.0 / 60).epsilon(1e-14));
    CHECK(t2[1] == Approx(20.0 / 60).epsilon(1e-14));
    auto const tinf = pa::temperature_probabilities(sizes, std::numeric_limits<double>::infinity());
    for (double p : tinf) CHECK(p == Approx(1.0 / 3).epsilon(1e-15));
    auto const t5 = pa::temperature_probabilities(sizes, 5.0);
    CHECK(t5[0] > t2[0]);  // higher T flattens towards uniform
    CHECK_THROWS_WITH(pa::temperature_probabilities(sizes, 0.5), Catch::Contains(">= 1"));
    CHECK_THROWS(pa::temperature_probabilities(sizes, std::nan("")));
}

TEST_CASE("temperature mixture: apportioned counts, with and without replacement", "[mixture]") {
    auto pools = pa::testing::parallel_corpus({"a", "b", "c"}, 900, {10, 20, 30});
    pools[0].examples.resize(100);
    pools[1].examples.resize(400);
    pa::TemperatureOptions opt;
    opt.temperature = 2.0;
    opt.total = 600;  // 100, 200, 300 exactly
    auto const without = pa::Mixture::temperature(pools, opt, 9);
    auto const plan = without.plan(0);
    CHECK(plan.counts == std::vector<std::size_t>{100, 200, 300});
    CHECK(occurrences(plan.order).size() == 600);  // no repeats: every count fits its language
    CHECK(without.shares()[1] == Approx(1.0 / 3));
    CHECK(occurrences(without.plan(4).order) == occurrences(plan.order));  // one draw, reused

    opt.total = 1500;  // 250, 500, 750: a needs 2.5 passes over its 100 records
    auto const repeat = pa::Mixture::temperature(pools, opt, 9).plan(0);
    CHECK(repeat.counts == std::vector<std::size_t>{250, 500, 750});
    for (auto const& [key, n] : occurrences(repeat.order))
        if (key.first == 0) CHECK((n == 2 || n == 3));  // as even as possible

    opt.with_replacement = true;
    opt.redraw_each_epoch = true;
    auto const iid = pa::Mixture::temperature(pools, opt, 9);
    auto const d0 = iid.plan(0), d1 = iid.plan(1);
    CHECK(d0.counts == repeat.counts);
    CHECK(occurrences(d0.order) != occurrences(d1.order));  // redrawn every epoch
    CHECK(occurrences(iid.plan(1).order) == occurrences(d1.order));
    int max_use = 0;
    for (auto const& [key, n] : occurrences(d0.order))
        if (key.first == 0) max_use = std::max(max_use, n);
    CHECK(max_use > 3);  // independent draws are not evened out
}

TEST_CASE("weighted: weights are shares of the final mixture in records", "[mixture]") {
    auto const pools = four_languages(100);
    pa::WeightedOptions opt;
    opt.weights = {{"en", 2.0}, {"de", 1.0}, {"zh", 1.0}};  // normalised to 0.5, 0.25, 0.25; ru left out
    auto const w = pa::Mixture::weighted(pools, opt, 4);
    REQUIRE(w.pools().size() == 3);
    CHECK(w.pools()[2].lang == "zh");
    CHECK(w.shares() == std::vector<double>{0.5, 0.25, 0.25});
    auto const plan = w.plan(0);
    CHECK(plan.counts == std::vector<std::size_t>{100, 50, 50});  // default total: the largest without repeats
    CHECK(occurrences(plan.order).size() == 200);

    opt.total = 400;  // en would need 200 of its 100 records
    CHECK_THROWS_WITH(pa::Mixture::weighted(pools, opt, 4),
                      Catch::Contains("'en'") && Catch::Contains("200") && Catch::Contains("overdraw"));
    opt.overdraw = pa::Overdraw::Repeat;
    auto const up = pa::Mixture::weighted(pools, opt, 4).plan(0);
    CHECK(up.counts == std::vector<std::size_t>{200, 100, 100});
    for (auto const& [key, n] : occurrences(up.order)) CHECK(n == (key.first == 0 ? 2 : 1));

    opt.total = 7;  // 3.5, 1.75, 1.75: floors 3, 1, 1 and the 2 left go to the largest remainders (0.75, 0.75)
    CHECK(pa::Mixture::weighted(pools, opt, 4).plan(0).counts == std::vector<std::size_t>{3, 2, 2});

    opt.weights = {{"en", -1.0}, {"de", 1.0}};
    CHECK_THROWS_WITH(pa::Mixture::weighted(pools, opt, 4), Catch::Contains("'en'") && Catch::Contains("-1"));
    opt.weights = {{"en", 0.0}};
    CHECK_THROWS_WITH(pa::Mixture::weighted(pools, opt, 4), Catch::Contains("every weight is zero"));
}

TEST_CASE("apportion: exact totals, within one of each share", "[mixture]") {
    auto const c = pa::apportion({1.0, 1.0, 1.0}, 100);
    CHECK(c == std::vector<std::size_t>{34, 33, 33});
    CHECK(pa::apportion({0.0, 3.0}, 5) == std::vector<std::size_t>{0, 5});
    auto const odd = pa::apportion({0.1, 0.2, 0.3, 0.4}, 1001);
    std::size_t sum = 0;
    for (std::size_t i = 0; i < odd.size(); ++i) {
        sum += odd[i];
        CHECK(std::abs(double(odd[i]) - 1001 * 0.1 * double(i + 1)) < 1.0);
    }
    CHECK(sum == 1001);
}

TEST_CASE("bad pools are refused with the language and record named", "[mixture]") {
    auto pools = four_languages(5);
    pools[1].examples[3].id = "r1";
    CHECK_THROWS_WITH(pa::Mixture::multilingual(pools, 0), Catch::Contains("'de'") && Catch::Contains("'r1'"));
    pools = four_languages(5);
    pools[2].examples[0].tokens = 0;
    CHECK_THROWS_WITH(pa::Mixture::multilingual(pools, 0), Catch::Contains("'ru'") && Catch::Contains("0 tokens"));
    pools = four_languages(5);
    pools[3].lang = "en";
    CHECK_THROWS_WITH(pa::Mixture::multilingual(pools, 0), Catch::Contains("'en' is given twice"));
    pools = four_languages(5);
    pools[0].examples[2].lang = "de";
    CHECK_THROWS_WITH(pa::Mixture::multilingual(pools, 0), Catch::Contains("says its language is 'de'"));
    pools = four_languages(5);
    pools[0].examples.clear();
    CHECK_THROWS_WITH(pa::Mixture::multilingual(pools, 0), Catch::Contains("'en' has no examples"));
}
