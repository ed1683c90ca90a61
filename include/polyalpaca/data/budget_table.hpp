/// @file data/budget_table.hpp
/// @brief Study-level comparison of runs' spends: equal budgets in the chosen unit, and the spread in the others.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "polyalpaca/data/budget.hpp"

namespace polyalpaca {

/// One run of a study and what it spent.
struct RunSpend {
    std::string run;
    Budget budget;
    Spend spend;
};

/// Several runs taken together (e.g. all monolingual runs): records, tokens and FLOPs add up, per-language spends
/// merge by language; epochs are not additive and are left at 0; budget_met when every part met its budget.
inline Spend combine_spends(std::vector<Spend> const& parts) {
    Spend total;
    total.budget_met = !parts.empty();
    for (auto const& p : parts) {
        total.records += p.records;
        total.tokens += p.tokens;
        total.flops += p.flops;
        total.budget_met = total.budget_met && p.budget_met;
        for (auto const& l : p.languages) {
            auto it = std::find_if(total.languages.begin(), total.languages.end(),
                                   [&](LanguageSpend const& t) { return t.lang == l.lang; });
            if (it == total.languages.end()) {
                total.languages.push_back(l);
            } else {
                it->records += l.records;
                it->tokens += l.tokens;
                it->flops += l.flops;
            }
        }
    }
    return total;
}

/// The paper's rows: each monolingual run (C), all of them together (N * C), multilingual (N * C) and downsampled (C).
inline std::vector<RunSpend> paper_design_rows(std::vector<RunSpend> const& monolingual, RunSpend const& multilingual,
                                               RunSpend const& downsampled) {
    require(!monolingual.empty(), "the matched design needs at least one monolingual run");
    std::vector<Spend> parts;
    double budget_sum = 0.0;
    for (auto const& r : monolingual) {
        require(r.budget.unit() == monolingual.front().budget.unit(), "monolingual runs '", r.run, "' and '",
                monolingual.front().run, "' have budgets in different units");
        parts.push_back(r.spend);
        budget_sum += r.budget.amount();
    }
    BudgetUnit const unit = monolingual.front().budget.unit();
    Budget const sum = unit == BudgetUnit::Records  ? Budget::records(std::int64_t(budget_sum))
                       : unit == BudgetUnit::Tokens ? Budget::tokens(std::int64_t(budget_sum))
                                                    : Budget::flops(budget_sum);
    std::vector<RunSpend> rows = monolingual;
    rows.push_back(
        RunSpend{"all " + std::to_string(monolingual.size()) + " monolingual runs", sum, combine_spends(parts)});
    rows.push_back(multilingual);
    rows.push_back(downsampled);
    return rows;
}

namespace detail {
inline std::string format(char const* fmt, double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, x);
    return buf;
}
}  // namespace detail

/// A markdown table per budget (runs with the same unit and amount), each with a last row giving max / min across the
/// group in every unit: 1.0000 in the budget's unit (up to one record or step of overshoot) and the spread in the
/// others (languages tokenise to different lengths, and attention grows with it).
inline std::string budget_table(std::vector<RunSpend> const& runs) {
    std::vector<Budget> budgets;
    for (auto const& r : runs)
        if (std::find(budgets.begin(), budgets.end(), r.budget) == budgets.end()) budgets.push_back(r.budget);
    std::string out;
    for (auto const& b : budgets) {
        out += "### Budget: " + b.describe() + "\n\n";
        out += "| run | records | tokens | FLOPs | epochs | tokens / record | spent / budget |\n";
        out += "|---|---:|---:|---:|---:|---:|---:|\n";
        double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
        int rows = 0;
        for (auto const& r : runs) {
            if (!(r.budget == b)) continue;
            Spend const& s = r.spend;
            double const v[3] = {double(s.records), double(s.tokens), s.flops};
            for (int u = 0; u < 3; ++u) {
                lo[u] = rows == 0 ? v[u] : std::min(lo[u], v[u]);
                hi[u] = rows == 0 ? v[u] : std::max(hi[u], v[u]);
            }
            ++rows;
            out += "| " + r.run + " | " + detail::format("%.0f", v[0]) + " | " + detail::format("%.0f", v[1]) + " | " +
                   detail::format("%.4e", v[2]) + " | " +
                   (s.epochs > 0 ? detail::format("%.3f", s.epochs) : std::string("-")) + " | " +
                   (s.records > 0 ? detail::format("%.1f", v[1] / v[0]) : std::string("-")) + " | " +
                   (b.amount() > 0 ? detail::format("%.4f", s.in(b.unit()) / b.amount()) : std::string("-")) + " |\n";
        }
        auto ratio = [&](int u) { return lo[u] > 0 ? detail::format("%.4f", hi[u] / lo[u]) : std::string("-"); };
        out += "| **max / min** | " + ratio(0) + " | " + ratio(1) + " | " + ratio(2) + " | | | |\n\n";
    }
    return out;
}

}  // namespace polyalpaca
