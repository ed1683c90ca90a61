/// @file data/budget.hpp
/// @brief A training budget in records, tokens or FLOPs, and what a mixture spends until the budget is met.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/budget_cost.hpp"
#include "polyalpaca/data/mixture.hpp"
#include "polyalpaca/data/mixture_pools.hpp"

namespace polyalpaca {

enum class BudgetUnit { Records, Tokens, Flops };

inline char const* unit_name(BudgetUnit u) {
    switch (u) {
        case BudgetUnit::Records:
            return "records";
        case BudgetUnit::Tokens:
            return "tokens";
        case BudgetUnit::Flops:
            return "FLOPs";
    }
    return "?";
}

/// How much training a run may do, in one unit. Records ignore that languages tokenise to different lengths;
/// tokens ignore that attention grows with sequence length; FLOPs count both (see FlopCost).
class Budget {
public:
    static Budget records(std::int64_t n) { return Budget(BudgetUnit::Records, double(check(n, "records"))); }
    static Budget tokens(std::int64_t n) { return Budget(BudgetUnit::Tokens, double(check(n, "tokens"))); }
    static Budget flops(double x) {
        require(std::isfinite(x) && x >= 0.0, "a FLOPs budget must be finite and non-negative, got ", x);
        return Budget(BudgetUnit::Flops, x);
    }

    BudgetUnit unit() const { return unit_; }
    double amount() const { return amount_; }
    std::string describe() const {
        std::ostringstream s;
        if (unit_ == BudgetUnit::Flops)
            s.precision(4);
        else
            s.precision(17);
        s << amount_ << " " << unit_name(unit_);
        return s.str();
    }
    friend bool operator==(Budget const&, Budget const&) = default;

private:
    Budget(BudgetUnit u, double a) : unit_(u), amount_(a) {}
    static std::int64_t check(std::int64_t n, char const* what) {
        require(n >= 0, "a budget of ", n, " ", what, " is negative");
        return n;
    }
    BudgetUnit unit_;
    double amount_;
};

struct LanguageSpend {
    std::string lang;
    std::int64_t records = 0;
    std::int64_t tokens = 0;
    double flops = 0.0;
};

/// What a run uses, in all three units. stop_epoch / stop_position is where it stops: the epoch and the number of its
/// records already used (the resume point); a budget met at the end of an epoch stops at (next epoch, 0).
struct Spend {
    std::int64_t records = 0;
    std::int64_t tokens = 0;
    double flops = 0.0;
    double epochs = 0.0;  ///< complete epochs plus the used fraction of the last one
    std::uint64_t stop_epoch = 0;
    std::size_t stop_position = 0;
    bool budget_met = false;
    std::vector<LanguageSpend> languages;

    double in(BudgetUnit u) const {
        return u == BudgetUnit::Records ? double(records) : u == BudgetUnit::Tokens ? double(tokens) : flops;
    }
};

struct SpendOptions {
    std::uint64_t max_epochs = 1000;  ///< give up (budget_met = false) after this many epochs
    /// Records per optimizer step: the stop is rounded up to the end of the step in which the budget is met (an
    /// epoch's last step may be short). 1 stops at the exact record.
    std::size_t step_records = 1;
};

/// Walks the epochs in training order, record by record, until the budget is met: the first record at which the
/// spend in the budget's unit reaches the amount (at most one record over; FLOPs compare with a relative slack of
/// 1e-12 for rounding), then to the end of its step. `epoch_order(e)` gives epoch e's order (a Mixture's plan, or the
/// order batching reorders it into); it must not be empty.
template <class EpochOrder>
Spend spend(std::vector<LanguagePool> const& pools, EpochOrder&& epoch_order, Budget const& budget,
            FlopCost const& cost, SpendOptions const& options = {}) {
    require(options.step_records >= 1, "spend: a step needs at least one record");
    require(budget.unit() != BudgetUnit::Flops || budget.amount() == 0.0 || cost.per_token > 0.0 ||
                cost.per_token_pair > 0.0,
            "a FLOPs budget needs a FlopCost with a positive cost per token");
    Spend s;
    for (auto const& p : pools) s.languages.push_back(LanguageSpend{p.lang, 0, 0, 0.0});
    long double flops = 0.0L;
    auto reached = [&] {
        switch (budget.unit()) {
            case BudgetUnit::Records:
                return double(s.records) >= budget.amount();
            case BudgetUnit::Tokens:
                return double(s.tokens) >= budget.amount();
            case BudgetUnit::Flops:
                return double(flops) >= budget.amount() * (1.0 - 1e-12);
        }
        return true;
    };
    if (reached()) {
        s.budget_met = true;
        return s;
    }
    for (std::uint64_t e = 0; e < options.max_epochs; ++e) {
        std::vector<PlanEntry> const order = epoch_order(e);
        require(!order.empty(), "spend: epoch ", e, " has no records, so the budget (", budget.describe(),
                ") can never be met");
        for (std::size_t pos = 0; pos < order.size(); ++pos) {
            ExampleRef const& ex = example_at(pools, order[pos]);
            double const f = cost.sequence(ex.tokens);
            ++s.records;
            s.tokens += ex.tokens;
            flops += f;
            LanguageSpend& l = s.languages[order[pos].pool];
            ++l.records;
            l.tokens += ex.tokens;
            l.flops += f;
            std::size_t const used = pos + 1;
            if (!s.budget_met && reached()) s.budget_met = true;
            if (s.budget_met && (used % options.step_records == 0 || used == order.size())) {
                s.flops = double(flops);
                bool const epoch_done = used == order.size();
                s.stop_epoch = epoch_done ? e + 1 : e;
                s.stop_position = epoch_done ? 0 : used;
                s.epochs = double(e) + double(used) / double(order.size());
                return s;
            }
        }
        s.epochs = double(e + 1);
        s.stop_epoch = e + 1;
    }
    s.flops = double(flops);
    return s;
}

/// spend() over a mixture's plans in plan order.
inline Spend spend(Mixture const& mixture, Budget const& budget, FlopCost const& cost,
                   SpendOptions const& options = {}) {
    return spend(
        mixture.pools(), [&](std::uint64_t e) { return mixture.plan(e).order; }, budget, cost, options);
}

/// The paper's matched design: N languages of M records, E epochs, C = E * M.
struct MatchedBudgets {
    std::int64_t monolingual = 0;   ///< C, for each language's own model
    std::int64_t multilingual = 0;  ///< N * C, the cost of all monolingual runs together
    std::int64_t downsampled = 0;   ///< C, the cost of one monolingual run
};

inline MatchedBudgets paper_matched_budgets(std::int64_t records_per_language, int languages, int epochs) {
    require(records_per_language > 0 && languages > 0 && epochs > 0,
            "the matched design needs M, N and E positive, got M = ", records_per_language, ", N = ", languages,
            ", E = ", epochs);
    std::int64_t const c = std::int64_t(epochs) * records_per_language;
    return {c, std::int64_t(languages) * c, c};
}

}  // namespace polyalpaca
