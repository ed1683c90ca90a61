// An epoch's training order (shuffle or group_by_length), its steps and micro-batches, and resuming mid-epoch.
#include <polyalpaca/data/batching.hpp>
#include <polyalpaca/data/budget.hpp>

#include <algorithm>

#include <catch2/catch.hpp>

#include "unit/mixture_corpus.hpp"

namespace pa = polyalpaca;
using pa::testing::four_languages;
using pa::testing::occurrences;

namespace {
std::vector<std::int64_t> lengths_of(pa::Mixture const& m, std::vector<pa::PlanEntry> const& order) {
    std::vector<std::int64_t> out;
    for (auto const& e : order) out.push_back(pa::example_at(m.pools(), e).tokens);
    return out;
}
}  // namespace

TEST_CASE("plain shuffle is the mixture's per-epoch order", "[batching]") {
    auto const m = pa::Mixture::multilingual(four_languages(50), 3);
    pa::BatchingOptions const opt = pa::batching_for_global(16, 4);
    CHECK(pa::epoch_order(m, 1, opt) == m.plan(1).order);
}

TEST_CASE("group_by_length: every example once, deterministic per (seed, epoch), HF's grouping", "[batching]") {
    auto const m = pa::Mixture::multilingual(four_languages(300), 3);  // 1200 records of 33 .. 83 tokens
    auto const opt = pa::batching_for_global(8, 2, pa::SampleOrder::GroupByLength);
    auto const e0 = pa::epoch_order(m, 0, opt), e1 = pa::epoch_order(m, 1, opt);
    CHECK(occurrences(e0) == occurrences(m.plan(0).order));
    CHECK(occurrences(e0).size() == 1200);
    CHECK(e0 != e1);
    CHECK(pa::epoch_order(pa::Mixture::multilingual(four_languages(300), 3), 1, opt) == e1);

    // mega_batch_mult = min(1200 / (8 * 4), 50) = 37: megabatches of 296, each sorted by length, longest first.
    CHECK(pa::default_mega_batch_mult(1200, 8) == 37);
    std::size_t const mega = 37 * 8;
    for (auto const* order : {&e0, &e1}) {
        auto const len = lengths_of(m, *order);
        CHECK(len.front() == *std::max_element(len.begin(), len.end()));
        int unsorted_heads = 0;
        for (std::size_t begin = 0; begin < len.size(); begin += mega) {
            std::size_t const end = std::min(len.size(), begin + mega);
            CHECK(std::is_sorted(len.begin() + std::ptrdiff_t(begin + 1), len.begin() + std::ptrdiff_t(end),
                                 std::greater<>()));
            if (end - begin > 1 && len[begin] < len[begin + 1]) ++unsorted_heads;  // the megabatch swapped with the 1st
        }
        CHECK(unsorted_heads <= 1);
    }
    CHECK(pa::default_mega_batch_mult(100000, 128) == 50);
    CHECK(pa::default_mega_batch_mult(10, 8) == 1);
}

TEST_CASE("steps: global batches cut into micro-batches, the last step short", "[batching]") {
    auto const opt = pa::batching_for_global(32, 4);
    CHECK(opt.accumulation == 8);
    CHECK(opt.global_batch() == 32);
    CHECK(pa::batching_for_global(128, 4).accumulation == 32);  // the paper's 128 = 4 x 32
    CHECK_THROWS_WITH(pa::batching_for_global(128, 5), Catch::Contains("micro-batches of 5"));

    auto const steps = pa::epoch_steps(301, opt);
    REQUIRE(steps.size() == 10);
    for (std::size_t s = 0; s < 9; ++s) {
        CHECK(steps[s].records == pa::EpochRange{s * 32, s * 32 + 32});
        REQUIRE(steps[s].micro_batches.size() == 8);
        for (auto const& mb : steps[s].micro_batches) CHECK(mb.size() == 4);
    }
    CHECK(steps[9].records == pa::EpochRange{288, 301});
    REQUIRE(steps[9].micro_batches.size() == 4);
    CHECK(steps[9].micro_batches[3] == pa::EpochRange{300, 301});

    auto const resumed = pa::epoch_steps(301, opt, 64);
    REQUIRE(resumed.size() == 8);
    CHECK(resumed[0].records == steps[2].records);
    CHECK(pa::epoch_steps(301, opt, 301).empty());
    CHECK_THROWS_WITH(pa::epoch_steps(301, opt, 65), Catch::Contains("not a step boundary"));
}

TEST_CASE("resuming at (epoch, position) reproduces the rest of the epoch exactly", "[batching]") {
    for (auto order : {pa::SampleOrder::Shuffle, pa::SampleOrder::GroupByLength}) {
        auto const opt = pa::batching_for_global(16, 4, order);
        pa::TemperatureOptions temp;
        temp.temperature = 3.0;
        temp.redraw_each_epoch = true;
        temp.with_replacement = true;
        auto const run = pa::Mixture::temperature(four_languages(100), temp, 17);
        auto const full = pa::epoch_order(run, 2, opt);
        auto const steps = pa::epoch_steps(full.size(), opt);

        // A new process: the same corpus, options and seed; resume in epoch 2 after 3 steps.
        auto const again = pa::Mixture::temperature(four_languages(100), temp, 17);
        std::size_t const position = 3 * opt.global_batch();
        auto const replay = pa::epoch_order(again, 2, opt);
        auto const rest = pa::epoch_steps(replay.size(), opt, position);
        REQUIRE(rest.size() == steps.size() - 3);
        for (std::size_t s = 0; s < rest.size(); ++s) {
            CHECK(rest[s].records == steps[s + 3].records);
            for (std::size_t i = rest[s].records.begin; i < rest[s].records.end; ++i) CHECK(replay[i] == full[i]);
        }
    }
}

TEST_CASE("a budget spent in group_by_length order stops where that order reaches it", "[batching][budget]") {
    auto const m = pa::Mixture::multilingual(four_languages(100), 5);
    auto const opt = pa::batching_for_global(16, 4, pa::SampleOrder::GroupByLength);
    auto order = [&](std::uint64_t e) { return pa::epoch_order(m, e, opt); };
    pa::SpendOptions steps;
    steps.step_records = opt.global_batch();
    auto const s = pa::spend(m.pools(), order, pa::Budget::tokens(15000), pa::FlopCost{1.0, 0.0}, steps);
    CHECK(s.stop_position % 16 == 0);
    std::int64_t tokens = 0;
    auto const e0 = order(0);
    for (std::size_t i = 0; i < s.stop_position; ++i) tokens += pa::example_at(m.pools(), e0[i]).tokens;
    CHECK(s.stop_epoch == 0);
    CHECK(s.tokens == tokens);
    CHECK(s.tokens >= 15000);
    CHECK(s.tokens - 15000 < 16 * 83);  // at most one step over
}
