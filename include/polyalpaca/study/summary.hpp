/// @file study/summary.hpp
/// @brief The study's summary, printed at its end and opening report.md: per measure (exact match, language
///        fidelity) a table of strategy x test language with 95% intervals, zero-shot marked, and which strategy did
///        best at which budget, tested prompt by prompt. Monolingual runs count as one strategy: each language's own
///        model. study/study_report.hpp writes the files.
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "polyalpaca/eval/intervals.hpp"
#include "polyalpaca/study/run_evaluation.hpp"

namespace polyalpaca::study {

/// What a summary table shows: exact-match accuracy, or language fidelity (the share of responses CLD2 identified
/// as the prompt's language).
enum class Measure { ExactMatch, Fidelity };

/// One row of the summary: a strategy of one (method, budget), its value per test language.
struct SummaryRow {
    std::string method, budget, strategy;
    std::map<std::string, std::optional<double>> value;  ///< the table's measure
    std::map<std::string, bool> zero_shot;
    /// Per test language, each prompt's outcome behind `value` (0/1; for the monolingual row's zero-shot cells the
    /// mean over the monolingual models): what the best-strategy lines compare strategies on, prompt by prompt.
    std::map<std::string, std::map<std::string, double>> per_prompt;
    /// Per test language, the cell's 95% interval as the run's evaluation.json holds it (results.csv's); absent for
    /// the monolingual row's zero-shot cells, whose interval is drawn from `per_prompt`.
    std::map<std::string, eval::Interval> interval;
};

namespace summary_detail {

inline std::string percent(std::optional<double> v) {
    if (!v) return "–";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f", *v * 100);
    return buf;
}

/// "62.5 [55.0, 69.5]": a percentage with its 95% interval (the value alone without one).
inline std::string percent_with(std::optional<double> v, std::optional<eval::Interval> const& i) {
    if (!v || !i) return percent(v);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.1f [%.1f, %.1f]", *v * 100, i->low * 100, i->high * 100);
    return buf;
}

inline std::optional<double> mean(SummaryRow const& r, std::vector<std::string> const& langs, int which) {
    double sum = 0;
    int n = 0;
    for (auto const& l : langs) {
        auto const it = r.value.find(l);
        if (it == r.value.end() || !it->second) continue;
        bool const zs = r.zero_shot.at(l);
        if ((which == 1 && zs) || (which == 2 && !zs)) continue;
        sum += *it->second, ++n;
    }
    return n > 0 ? std::optional<double>(sum / n) : std::nullopt;
}

/// Two rows' outcomes on the prompts both have, over the languages `which` selects (as mean() does), each prompt
/// weighted so that every language counts equally, as in the rows' means (with as many prompts in every language
/// the weights are 1 and 0/1 outcomes stay 0/1).
inline std::pair<std::vector<double>, std::vector<double>> paired_outcomes(SummaryRow const& a, SummaryRow const& b,
                                                                           std::vector<std::string> const& langs,
                                                                           int which) {
    std::vector<std::vector<std::pair<double, double>>> by_language;
    std::size_t total = 0;
    for (auto const& l : langs) {
        auto const za = a.zero_shot.find(l);
        auto const pa = a.per_prompt.find(l), pb = b.per_prompt.find(l);
        if (za == a.zero_shot.end() || pa == a.per_prompt.end() || pb == b.per_prompt.end()) continue;
        if ((which == 1 && za->second) || (which == 2 && !za->second)) continue;
        std::vector<std::pair<double, double>> pairs;
        for (auto const& [id, x] : pa->second)
            if (auto const it = pb->second.find(id); it != pb->second.end()) pairs.emplace_back(x, it->second);
        if (pairs.empty()) continue;
        total += pairs.size();
        by_language.push_back(std::move(pairs));
    }
    std::vector<double> xa, xb;
    for (auto const& pairs : by_language) {
        double const weight = double(total) / (double(by_language.size()) * double(pairs.size()));
        for (auto const& [x, y] : pairs) xa.push_back(x * weight), xb.push_back(y * weight);
    }
    return {xa, xb};
}

/// The seeded 95% bootstrap interval of a row's mean over the languages `which` selects (as mean() does), resampling
/// its prompts with every language weighted equally (paired_outcomes' weights); none without per-prompt outcomes.
inline std::optional<eval::Interval> mean_interval(SummaryRow const& r, std::vector<std::string> const& langs,
                                                   int which) {
    auto const outcomes = paired_outcomes(r, r, langs, which).first;
    if (outcomes.empty()) return std::nullopt;
    return eval::bootstrap_mean(outcomes, {.resamples = 10000, .level = 0.95, .seed = 0});
}

/// The interval of one cell: the run's own, else a bootstrap of the row's prompts of language `lang`.
inline std::optional<eval::Interval> cell_interval(SummaryRow const& r, std::string const& lang) {
    if (auto const stored = r.interval.find(lang); stored != r.interval.end()) return stored->second;
    auto const it = r.per_prompt.find(lang);
    if (it == r.per_prompt.end() || it->second.empty()) return std::nullopt;
    std::vector<double> outcomes;
    for (auto const& [id, x] : it->second) outcomes.push_back(x);
    return eval::bootstrap_mean(outcomes, {.resamples = 10000, .level = 0.95, .seed = 0});
}

/// ", ahead of **b** by +d points (95% CI [lo, hi]; McNemar p = 0.03: significant)": the winner's lead over the
/// runner-up, prompt by prompt (eval/intervals.hpp: McNemar for 0/1 outcomes, else a paired bootstrap); ", tied with
/// **b**" when they are level, "" without per-prompt outcomes.
inline std::string lead(SummaryRow const& winner, SummaryRow const& second, std::vector<std::string> const& langs,
                        int which) {
    auto const [a, b] = paired_outcomes(winner, second, langs, which);
    if (a.empty()) return "";
    auto const c = eval::compare_paired(a, b, {.resamples = 10000, .level = 0.95, .seed = 0});
    if (std::abs(c.difference.estimate) < 1e-12) return ", tied with **" + second.strategy + "**";
    char buf[256];
    std::snprintf(buf, sizeof buf, ", ahead of **%s** by %+.1f points (95%% CI [%+.1f, %+.1f]; %s p = %.3g: %s)",
                  second.strategy.c_str(), 100 * c.difference.estimate, 100 * c.difference.low,
                  100 * c.difference.high, c.binary ? "McNemar" : "paired bootstrap", c.p(),
                  c.significant() ? "significant" : "not significant");
    return buf;
}

}  // namespace summary_detail

/// Whether the study has exact-match numbers (else the summary ranks by fidelity).
inline bool has_exact_match(std::vector<RunEvaluation> const& runs) {
    for (auto const& r : runs)
        for (auto const& [l, o] : r.by_language)
            if (o.exact_match) return true;
    return false;
}

/// Whether any response counted in language fidelity.
inline bool has_fidelity(std::vector<RunEvaluation> const& runs) {
    for (auto const& r : runs)
        for (auto const& [l, o] : r.by_language)
            if (o.fidelity) return true;
    return false;
}

/// The summary rows of `measure`: per (budget, method), "monolingual" (language l from the model tuned on l; a
/// zero-shot language from the mean of the monolingual models), then every other strategy in study order.
inline std::vector<SummaryRow> summary_rows(std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                                            Measure measure) {
    bool const em = measure == Measure::ExactMatch;
    auto value = [em](LanguageOutcome const& o) { return em ? o.exact_match : o.fidelity; };
    auto outcomes = [em](LanguageOutcome const& o) -> auto const& { return em ? o.exact_by_prompt : o.fidelity_by_prompt; };
    auto interval = [em](LanguageOutcome const& o) { return em ? o.exact_match_interval : o.fidelity_interval; };
    std::vector<SummaryRow> rows;
    auto row_for = [&](RunEvaluation const& r, std::string const& strategy) -> SummaryRow& {
        for (auto& row : rows)
            if (row.method == r.method && row.budget == r.budget && row.strategy == strategy) return row;
        rows.push_back({r.method, r.budget, strategy, {}, {}});
        return rows.back();
    };
    for (auto const& r : runs) {
        bool const mono = r.label.starts_with("monolingual ");
        auto& row = row_for(r, mono ? "monolingual" : r.label);
        for (auto const& l : langs) {
            auto const it = r.by_language.find(l);
            if (it == r.by_language.end()) continue;
            if (mono && r.zero_shot(l)) continue;  // the mean of the monolingual models, below
            row.value[l] = value(it->second), row.zero_shot[l] = r.zero_shot(l);
            row.per_prompt[l] = outcomes(it->second);
            if (auto const i = interval(it->second)) row.interval[l] = *i;
        }
    }
    // Zero-shot cells of the monolingual row: the mean over the monolingual models.
    for (auto& row : rows) {
        if (row.strategy != "monolingual") continue;
        for (auto const& l : langs) {
            if (row.value.count(l)) continue;
            double sum = 0;
            int n = 0;
            std::map<std::string, std::pair<double, int>> prompt_sums;
            for (auto const& r : runs)
                if (r.method == row.method && r.budget == row.budget && r.label.starts_with("monolingual "))
                    if (auto const it = r.by_language.find(l); it != r.by_language.end())
                        if (auto const v = value(it->second)) {
                            sum += *v, ++n;
                            for (auto const& [id, x] : outcomes(it->second)) {
                                prompt_sums[id].first += x;
                                ++prompt_sums[id].second;
                            }
                        }
            if (n > 0) row.value[l] = sum / n;
            for (auto const& [id, s] : prompt_sums)
                if (s.second == n) row.per_prompt[l][id] = s.first / n;
            row.zero_shot[l] = true;
        }
    }
    return rows;
}

/// One summary table of `measure` (markdown), every cell with its 95% bootstrap interval over the prompts, and the
/// sentence per (method, budget) naming the best strategy and its lead over the runner-up.
inline std::string summary_table(std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                                 std::optional<RunEvaluation> const& baseline, Measure measure) {
    using summary_detail::percent;
    using summary_detail::percent_with;
    bool const em = measure == Measure::ExactMatch;
    auto const rows = summary_rows(runs, langs, measure);
    std::ostringstream out;
    out << (em ? "Exact-match accuracy (%) per test language"
               : "Language fidelity (%) per test language (the share of responses CLD2 identified as the prompt's "
                 "language, over the prompts whose answers carry a language)")
        << ", with 95% bootstrap intervals over the prompts; † zero-shot (not tuned on).\n\n"
        << "| method | budget | strategy |";
    for (auto const& l : langs) out << ' ' << l << " |";
    out << " mean tuned | mean zero-shot | mean |\n|---|---|---|";
    for (std::size_t i = 0; i < langs.size() + 3; ++i) out << "---:|";
    out << '\n';
    if (baseline) {
        out << "| – | – | no tuning (base model) |";
        SummaryRow b{"", "", "", {}, {}};
        for (auto const& l : langs) {
            auto const it = baseline->by_language.find(l);
            b.value[l] = it == baseline->by_language.end() ? std::nullopt : (em ? it->second.exact_match : it->second.fidelity);
            b.zero_shot[l] = false;
            if (it != baseline->by_language.end()) {
                b.per_prompt[l] = em ? it->second.exact_by_prompt : it->second.fidelity_by_prompt;
                if (auto const i = em ? it->second.exact_match_interval : it->second.fidelity_interval)
                    b.interval[l] = *i;
            }
            out << ' ' << percent_with(b.value[l], summary_detail::cell_interval(b, l)) << " |";
        }
        out << " – | – | " << percent_with(summary_detail::mean(b, langs, 0), summary_detail::mean_interval(b, langs, 0))
            << " |\n";
    }
    for (auto const& r : rows) {
        out << "| " << r.method << " | " << r.budget << " | " << r.strategy << " |";
        for (auto const& l : langs) {
            auto const it = r.value.find(l);
            out << ' ' << (it == r.value.end() ? "–" : percent_with(it->second, summary_detail::cell_interval(r, l)))
                << (r.zero_shot.count(l) && r.zero_shot.at(l) ? " †" : "") << " |";
        }
        for (int which : {1, 2, 0})
            out << ' '
                << percent_with(summary_detail::mean(r, langs, which), summary_detail::mean_interval(r, langs, which))
                << " |";
        out << '\n';
    }
    out << '\n';
    std::vector<std::pair<std::string, std::string>> groups;
    for (auto const& r : rows)
        if (std::find(groups.begin(), groups.end(), std::pair{r.method, r.budget}) == groups.end())
            groups.emplace_back(r.method, r.budget);
    for (auto const& [method, budget] : groups) {
        out << "Best at " << method << ", " << budget << ":";
        char const* sep = " ";
        for (int which : {0, 1, 2}) {
            std::optional<double> best, second_best;
            SummaryRow const* winner = nullptr;
            SummaryRow const* second = nullptr;
            for (auto const& r : rows) {
                if (r.method != method || r.budget != budget) continue;
                auto const m = summary_detail::mean(r, langs, which);
                if (!m) continue;
                if (!best || *m > *best + 1e-12) {
                    second_best = best, second = winner;
                    best = m, winner = &r;
                } else if (!second_best || *m > *second_best + 1e-12) {
                    second_best = m, second = &r;
                }
            }
            if (!best) continue;
            out << sep << (which == 0 ? "overall" : which == 1 ? "on tuned languages" : "on zero-shot languages")
                << " **" << winner->strategy << "** (" << percent(best) << "%)"
                << (second ? summary_detail::lead(*winner, *second, langs, which) : std::string());
            sep = "; ";
        }
        out << ".\n";
    }
    return out.str();
}

/// The summary: exact match (when the test sets give answers), then language fidelity (when any response counted),
/// each a table with its best-strategy sentences.
inline std::string summary_markdown(std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                                    std::optional<RunEvaluation> const& baseline) {
    if (!has_exact_match(runs)) return summary_table(runs, langs, baseline, Measure::Fidelity);
    auto out = summary_table(runs, langs, baseline, Measure::ExactMatch);
    if (has_fidelity(runs)) out += "\n" + summary_table(runs, langs, baseline, Measure::Fidelity);
    return out;
}

}  // namespace polyalpaca::study
