// Budgets in records, tokens and FLOPs: where a run stops, what it spends in every unit, the paper's matched design.
#include <polyalpaca/data/budget.hpp>
#include <polyalpaca/data/budget_table.hpp>

#include <cmath>

#include <catch2/catch.hpp>

#include "unit/mixture_corpus.hpp"

namespace pa = polyalpaca;
using pa::testing::four_languages;

namespace {
// The reference walk: consume records in plan order until the unit's total reaches the amount.
struct Walk {
    std::int64_t records = 0, tokens = 0;
    double flops = 0.0;
};
Walk walk_until(pa::Mixture const& m, pa::BudgetUnit unit, double amount, pa::FlopCost const& cost) {
    Walk w;
    for (std::uint64_t e = 0;; ++e)
        for (auto const& entry : m.plan(e).order) {
            auto const& ex = pa::example_at(m.pools(), entry);
            ++w.records;
            w.tokens += ex.tokens;
            w.flops += cost.sequence(ex.tokens);
            double const v = unit == pa::BudgetUnit::Records  ? double(w.records)
                             : unit == pa::BudgetUnit::Tokens ? double(w.tokens)
                                                              : w.flops;
            if (v >= amount * (unit == pa::BudgetUnit::Flops ? 1 - 1e-12 : 1.0)) return w;
        }
}
std::int64_t tokens_of(pa::LanguagePool const& pool) {
    std::int64_t n = 0;
    for (auto const& e : pool.examples) n += e.tokens;
    return n;
}
}  // namespace

TEST_CASE("the paper's matched design spends C, N*C and C records in E epochs each", "[budget]") {
    std::int64_t const m = 40, e = 3;
    auto const pools = four_languages(std::size_t(m));
    auto const budgets = pa::paper_matched_budgets(m, 4, int(e));
    CHECK(budgets.monolingual == 120);
    CHECK(budgets.multilingual == 480);
    CHECK(budgets.downsampled == 120);
    pa::FlopCost const cost{1000.0, 2.0};

    std::vector<pa::RunSpend> mono;
    for (auto const& p : pools) {
        auto const s =
            pa::spend(pa::Mixture::monolingual(pools, p.lang, 1), pa::Budget::records(budgets.monolingual), cost);
        CHECK(s.budget_met);
        CHECK(s.records == 120);
        CHECK(s.epochs == 3.0);
        CHECK(s.stop_epoch == 3);
        CHECK(s.stop_position == 0);
        CHECK(s.tokens == e * tokens_of(p));
        mono.push_back({"monolingual " + p.lang, pa::Budget::records(budgets.monolingual), s});
    }
    CHECK(mono[3].spend.tokens < mono[0].spend.tokens);  // zh tokenises shortest here, ru longest
    CHECK(mono[2].spend.tokens > mono[1].spend.tokens);

    auto const multi = pa::spend(pa::Mixture::multilingual(pools, 1), pa::Budget::records(budgets.multilingual), cost);
    CHECK(multi.records == 480);
    CHECK(multi.epochs == 3.0);
    for (auto const& l : multi.languages) CHECK(l.records == 120);
    auto const all_mono = pa::combine_spends({mono[0].spend, mono[1].spend, mono[2].spend, mono[3].spend});
    CHECK(all_mono.tokens == multi.tokens);  // the union costs exactly all monolingual runs together
    CHECK(all_mono.flops == Approx(multi.flops).epsilon(1e-12));

    auto const down = pa::spend(pa::Mixture::downsampled(pools, {}, 1), pa::Budget::records(budgets.downsampled), cost);
    CHECK(down.records == 120);
    CHECK(down.epochs == 3.0);
    for (auto const& l : down.languages) CHECK(l.records == 30);

    auto const table =
        pa::budget_table(pa::paper_design_rows(mono, {"multilingual", pa::Budget::records(480), multi},
                                               {"multilingual downsampled", pa::Budget::records(120), down}));
    CHECK_THAT(table, Catch::Contains("### Budget: 120 records") && Catch::Contains("### Budget: 480 records"));
    CHECK_THAT(table, Catch::Contains("| all 4 monolingual runs | 480 |"));
    CHECK_THAT(table, Catch::Contains("| monolingual ru | 120 |"));
    // Records agree within each budget; tokens do not (ru's monolingual run over zh's in the C group).
    double lo = 1e300, hi = 0;
    for (auto const& r : mono) {
        lo = std::min(lo, double(r.spend.tokens));
        hi = std::max(hi, double(r.spend.tokens));
    }
    lo = std::min(lo, double(down.tokens));
    hi = std::max(hi, double(down.tokens));
    char expected[96];
    std::snprintf(expected, sizeof expected, "| **max / min** | 1.0000 | %.4f |", hi / lo);
    CHECK_THAT(table, Catch::Contains(expected));
    CHECK_THAT(table, Catch::Contains("| **max / min** | 1.0000 | 1.0000 |"));  // the N*C group: same records, tokens
}

TEST_CASE("a budget can end mid-epoch, at the record where it is met", "[budget]") {
    auto const pools = four_languages(40);
    auto const mono = pa::Mixture::monolingual(pools, "de", 5);
    pa::FlopCost const cost{10.0, 0.5};
    auto const s = pa::spend(mono, pa::Budget::records(100), cost);
    CHECK(s.records == 100);
    CHECK(s.epochs == 2.5);
    CHECK(s.stop_epoch == 2);
    CHECK(s.stop_position == 20);
    auto const w = walk_until(mono, pa::BudgetUnit::Records, 100, cost);
    CHECK(s.tokens == w.tokens);

    for (double amount : {1.0, 999.0, 5000.0, 12345.0}) {
        auto const t = pa::spend(mono, pa::Budget::tokens(std::int64_t(amount)), cost);
        auto const ref = walk_until(mono, pa::BudgetUnit::Tokens, amount, cost);
        CHECK(t.records == ref.records);
        CHECK(t.tokens == ref.tokens);
        CHECK(t.tokens >= std::int64_t(amount));
        CHECK(t.tokens < std::int64_t(amount) + 52 + 23);  // at most one record over
    }
    double const flops_amount = 2.5e6;
    auto const f = pa::spend(mono, pa::Budget::flops(flops_amount), cost);
    auto const ref = walk_until(mono, pa::BudgetUnit::Flops, flops_amount, cost);
    CHECK(f.records == ref.records);
    CHECK(f.flops == Approx(ref.flops).epsilon(1e-12));
    CHECK(f.flops >= flops_amount);
    CHECK(f.epochs == Approx(double(f.stop_epoch) + double(f.stop_position) / 40.0));
    double per_lang = 0;
    for (auto const& l : f.languages) per_lang += l.flops;
    CHECK(per_lang == Approx(f.flops).epsilon(1e-12));
}

TEST_CASE("equal token budgets: every setting spends the same tokens, records differ", "[budget]") {
    auto const pools = four_languages(40);
    pa::FlopCost const cost{1.0, 0.0};
    std::int64_t const budget = 20000;
    std::vector<pa::Spend> spends{pa::spend(pa::Mixture::monolingual(pools, "ru", 2), pa::Budget::tokens(budget), cost),
                                  pa::spend(pa::Mixture::monolingual(pools, "zh", 2), pa::Budget::tokens(budget), cost),
                                  pa::spend(pa::Mixture::multilingual(pools, 2), pa::Budget::tokens(budget), cost),
                                  pa::spend(pa::Mixture::downsampled(pools, {}, 2), pa::Budget::tokens(budget), cost)};
    for (auto const& s : spends) {
        CHECK(s.tokens >= budget);
        CHECK(s.tokens < budget + 80);
        CHECK(s.flops == double(s.tokens));
    }
    CHECK(spends[1].records > spends[0].records);  // zh's records are shorter: more of them fit
}

TEST_CASE("rounding the stop up to the end of an optimizer step", "[budget]") {
    auto const pools = four_languages(40);
    auto const mono = pa::Mixture::monolingual(pools, "en", 5);
    pa::SpendOptions opt;
    opt.step_records = 8;
    auto const s = pa::spend(mono, pa::Budget::records(101), {}, opt);
    CHECK(s.records == 104);
    CHECK(s.stop_epoch == 2);
    CHECK(s.stop_position == 24);
    opt.step_records = 16;  // epoch of 40: steps end at 16, 32, 40
    auto const t = pa::spend(mono, pa::Budget::records(79), {}, opt);
    CHECK(t.records == 80);
    CHECK(t.stop_epoch == 2);
    CHECK(t.stop_position == 0);
}

TEST_CASE("budget edge cases", "[budget]") {
    auto const pools = four_languages(10);
    auto const mono = pa::Mixture::monolingual(pools, "en", 5);
    auto const zero = pa::spend(mono, pa::Budget::records(0), {});
    CHECK(zero.budget_met);
    CHECK(zero.records == 0);
    CHECK(zero.epochs == 0.0);

    pa::SpendOptions opt;
    opt.max_epochs = 2;
    auto const unmet = pa::spend(mono, pa::Budget::records(1000), {}, opt);
    CHECK_FALSE(unmet.budget_met);
    CHECK(unmet.records == 20);
    CHECK(unmet.epochs == 2.0);

    CHECK_THROWS_WITH(pa::Budget::records(-1), Catch::Contains("negative"));
    CHECK_THROWS(pa::Budget::flops(std::nan("")));
    CHECK_THROWS_WITH(pa::spend(mono, pa::Budget::flops(1e9), {}), Catch::Contains("positive cost"));
    CHECK_THROWS_WITH(
        pa::spend(pools, [](std::uint64_t) { return std::vector<pa::PlanEntry>{}; }, pa::Budget::records(1), {}),
        Catch::Contains("epoch 0 has no records"));
    CHECK(pa::Budget::tokens(5) == pa::Budget::tokens(5));
    CHECK_FALSE(pa::Budget::tokens(5) == pa::Budget::records(5));
    CHECK(pa::Budget::flops(3.5e15).describe() == "3.5e+15 FLOPs");
}
