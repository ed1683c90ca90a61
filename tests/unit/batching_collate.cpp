// Collation into TokenBatch: right padding to the longest example, pad id in ids, -100 in labels.
#include <polyalpaca/data/batching.hpp>

#include <set>

#include <catch2/catch.hpp>

#include "unit/mixture_corpus.hpp"

namespace pa = polyalpaca;

TEST_CASE("collate pads on the right to the longest example", "[batching]") {
    pa::TokenizedExample const a{{5, 6, 7}, {-100, 6, 7}};  // prompt token masked (FPFT)
    pa::TokenizedExample const b{{1, 2, 3, 4, 9}, {1, 2, 3, 4, 9}};
    pa::TokenizedExample const c{{8, 3}, {8, 3}};
    std::vector<pa::TokenizedExample const*> const batch{&a, &b, &c};
    auto const t = pa::collate(std::span<pa::TokenizedExample const* const>(batch), 3);
    REQUIRE(t.batch() == 3);
    REQUIRE(t.seq() == 5);
    std::vector<std::int32_t> const ids0{5, 6, 7, 3, 3}, labels0{-100, 6, 7, -100, -100};
    std::vector<std::int32_t> const ids2{8, 3, 3, 3, 3}, labels2{8, 3, -100, -100, -100};
    for (int j = 0; j < 5; ++j) {
        CHECK(t.ids(0, j) == ids0[j]);
        CHECK(t.labels(0, j) == labels0[j]);
        CHECK(t.ids(1, j) == b.ids[j]);
        CHECK(t.labels(1, j) == b.labels[j]);
        CHECK(t.ids(2, j) == ids2[j]);
        CHECK(t.labels(2, j) == labels2[j]);
    }
    CHECK(pa::ignore_index == -100);
}

TEST_CASE("collate refuses malformed examples", "[batching]") {
    pa::TokenizedExample const ok{{1, 2}, {1, 2}};
    pa::TokenizedExample const short_labels{{1, 2, 3}, {1, 2}};
    pa::TokenizedExample const empty{{}, {}};
    std::vector<pa::TokenizedExample const*> v{&ok, &short_labels};
    CHECK_THROWS_WITH(pa::collate(std::span<pa::TokenizedExample const* const>(v), 0),
                      Catch::Contains("example 1 has 3 ids but 2 labels"));
    v = {&empty};
    CHECK_THROWS_WITH(pa::collate(std::span<pa::TokenizedExample const* const>(v), 0), Catch::Contains("no tokens"));
    v.clear();
    CHECK_THROWS_WITH(pa::collate(std::span<pa::TokenizedExample const* const>(v), 0), Catch::Contains("at least one"));
}

TEST_CASE("a step's micro-batches as TokenBatches", "[batching]") {
    auto const m = pa::Mixture::multilingual(pa::testing::four_languages(10), 1);
    // The caller's token data: example i of language l is tokens copies of (l * 100 + i).
    std::vector<std::vector<pa::TokenizedExample>> data(4);
    for (std::size_t l = 0; l < 4; ++l)
        for (auto const& ref : m.pools()[l].examples) {
            std::vector<std::int32_t> ids(std::size_t(ref.tokens), std::int32_t(l * 100 + ref.index));
            data[l].push_back({ids, ids});
        }
    auto const opt = pa::batching_for_global(12, 4, pa::SampleOrder::GroupByLength);
    auto const order = pa::epoch_order(m, 0, opt);
    auto const steps = pa::epoch_steps(order.size(), opt);
    REQUIRE(steps.size() == 4);  // 40 records: 12, 12, 12, 4
    auto get = [&](pa::PlanEntry e) -> pa::TokenizedExample const& { return data[e.pool][e.example]; };
    std::size_t rows = 0;
    for (auto const& step : steps) {
        auto const batches = pa::step_batches(order, step, get, 0);
        REQUIRE(batches.size() == step.micro_batches.size());
        for (std::size_t k = 0; k < batches.size(); ++k) {
            auto const& mb = step.micro_batches[k];
            CHECK(std::size_t(batches[k].batch()) == mb.size());
            std::int64_t longest = 0;
            for (std::size_t i = mb.begin; i < mb.end; ++i) {
                auto const& ref = pa::example_at(m.pools(), order[i]);
                longest = std::max(longest, ref.tokens);
                CHECK(batches[k].ids(i - mb.begin, 0) == std::int32_t(order[i].pool * 100 + ref.index));
            }
            CHECK(batches[k].seq() == longest);
            rows += std::size_t(batches[k].batch());
        }
    }
    CHECK(rows == 40);
}

TEST_CASE("end to end from the caller's examples: make_pool, a mixture, steps, batches", "[batching][mixture]") {
    struct CallerExample {  // the shape of data/examples.hpp's Example
        std::vector<std::int32_t> ids, labels;
        std::string lang, id;
    };
    std::vector<std::vector<CallerExample>> data(2);
    for (std::int32_t i = 0; i < 9; ++i) {
        data[0].push_back({std::vector<std::int32_t>(std::size_t(3 + i), i),
                           std::vector<std::int32_t>(std::size_t(3 + i), i), "en", "rec" + std::to_string(i)});
        data[1].push_back({std::vector<std::int32_t>(std::size_t(20 - i), 100 + i),
                           std::vector<std::int32_t>(std::size_t(20 - i), -100), "fi", "rec" + std::to_string(i)});
    }
    std::vector<pa::LanguagePool> const pools{pa::make_pool("en", data[0]), pa::make_pool("fi", data[1])};
    CHECK(pools[1].examples[4].tokens == 16);
    CHECK(pools[1].examples[4].id == "rec4");
    CHECK(pools[1].examples[4].index == 4);

    pa::DownsampleOptions down;
    down.ids = pa::SampleIds::Disjoint;
    down.total = 9;
    auto const m = pa::Mixture::downsampled(pools, down, 2);
    auto const opt = pa::batching_for_global(4, 2);
    auto const order = pa::epoch_order(m, 0, opt);
    REQUIRE(order.size() == 9);
    auto get = [&](pa::PlanEntry e) -> CallerExample const& {
        return data[e.pool][m.pools()[e.pool].examples[e.example].index];
    };
    std::set<std::int32_t> firsts;
    for (auto const& step : pa::epoch_steps(order.size(), opt))
        for (auto const& batch : pa::step_batches(order, step, get, -1))
            for (int b = 0; b < batch.batch(); ++b) firsts.insert(batch.ids(b, 0) % 100);
    CHECK(firsts.size() == 9);  // disjoint ids: record i appears once, in one of the two languages
}
