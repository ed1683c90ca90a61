/// @file study/summary.hpp
/// @brief The study's report: eval/report.hpp's report (fidelity, judge score, loss per run and test language)
///        with exact-match accuracy added (a section of report.md, a column of results.csv), and the summary table
///        printed at the end of a study: strategy x test language accuracy, zero-shot marked, and which strategy did
///        best at which budget. Monolingual runs count as one strategy: each language's own model.
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "polyalpaca/eval/intervals.hpp"
#include "polyalpaca/eval/report.hpp"
#include "polyalpaca/study/run_evaluation.hpp"

namespace polyalpaca::study {

/// One row of the summary: a strategy of one (method, budget), its value per test language.
struct SummaryRow {
    std::string method, budget, strategy;
    std::map<std::string, std::optional<double>> value;  ///< exact match (or fidelity when no answers are known)
    std::map<std::string, bool> zero_shot;
    /// Per test language, each prompt's outcome behind `value` (0/1; for the monolingual row's zero-shot cells the
    /// mean over the monolingual models): what the best-strategy lines compare strategies on, prompt by prompt.
    std::map<std::string, std::map<std::string, double>> per_prompt;
};

namespace summary_detail {

inline std::string percent(std::optional<double> v) {
    if (!v) return "–";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f", *v * 100);
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

/// The summary rows: per (budget, method), "monolingual" (language l from the model tuned on l; a zero-shot
/// language from the mean of the monolingual models), then every other strategy in study order.
inline std::vector<SummaryRow> summary_rows(std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs) {
    bool const em = has_exact_match(runs);
    auto value = [em](LanguageOutcome const& o) { return em ? o.exact_match : o.fidelity; };
    auto outcomes = [em](LanguageOutcome const& o) -> auto const& { return em ? o.exact_by_prompt : o.fidelity_by_prompt; };
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
            if (!mono) {
                row.value[l] = value(it->second), row.zero_shot[l] = r.zero_shot(l);
                row.per_prompt[l] = outcomes(it->second);
            } else if (!r.zero_shot(l)) {
                row.value[l] = value(it->second), row.zero_shot[l] = false;
                row.per_prompt[l] = outcomes(it->second);
            }
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

/// The summary table (markdown) and the sentence per (method, budget) naming the best strategy.
inline std::string summary_markdown(std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                                    std::optional<RunEvaluation> const& baseline) {
    using summary_detail::percent;
    bool const em = has_exact_match(runs);
    auto const rows = summary_rows(runs, langs);
    std::ostringstream out;
    out << (em ? "Exact-match accuracy (%)" : "Language fidelity (%)")
        << " per test language; † zero-shot (not tuned on).\n\n| method | budget | strategy |";
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
            out << ' ' << percent(b.value[l]) << " |";
        }
        out << " – | – | " << percent(summary_detail::mean(b, langs, 0)) << " |\n";
    }
    for (auto const& r : rows) {
        out << "| " << r.method << " | " << r.budget << " | " << r.strategy << " |";
        for (auto const& l : langs) {
            auto const it = r.value.find(l);
            out << ' ' << (it == r.value.end() ? "–" : percent(it->second)) << (r.zero_shot.count(l) && r.zero_shot.at(l) ? " †" : "") << " |";
        }
        out << ' ' << percent(summary_detail::mean(r, langs, 1)) << " | " << percent(summary_detail::mean(r, langs, 2))
            << " | " << percent(summary_detail::mean(r, langs, 0)) << " |\n";
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

/// report.md (with the summary and an exact-match section per run before eval/report.hpp's sections), results.csv
/// (with exact_match and the 95% bootstrap intervals of exact match and fidelity), plots/, written atomically under
/// `dir`.
inline void write_study_report(std::filesystem::path const& dir, eval::Study const& study,
                               std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                               std::optional<RunEvaluation> const& baseline, std::string const& header) {
    eval::write_report(dir, study);
    std::ostringstream md;
    md << "# Study report\n\n" << header << "\n## Summary\n\n" << summary_markdown(runs, langs, baseline);
    if (has_exact_match(runs)) {
        md << "\n## Exact match per task\n\nAccuracy (%) per run, test language and task.\n";
        for (auto const& r : runs) {
            md << "\n### " << r.name << "\n\n| language | task | accuracy |\n|---|---|---:|\n";
            for (auto const& l : langs)
                if (auto const it = r.by_language.find(l); it != r.by_language.end())
                    for (auto const& [task, acc] : it->second.tasks)
                        md << "| " << l << (r.zero_shot(l) ? " †" : "") << " | " << task << " | "
                           << summary_detail::percent(acc) << " |\n";
        }
    }
    auto report = eval::report_markdown(study);
    report.erase(0, report.find('\n') + 1);  // its "# Evaluation report" title
    md << "\n# Evaluation\n" << report;
    io::write_file_atomically(dir / "report.md", md.str());

    std::map<std::pair<std::string, std::string>, LanguageOutcome const*> outcome;
    for (auto const& r : runs)
        for (auto const& [l, o] : r.by_language) outcome[{r.name, l}] = &o;
    auto number = [](std::optional<double> v) { return v ? eval::report_detail::fixed(*v, 6) : std::string(); };
    std::istringstream csv(eval::results_csv(study));
    std::ostringstream with;
    std::string line;
    std::getline(csv, line);
    with << line << ",exact_match,exact_match_low,exact_match_high,fidelity_low,fidelity_high\n";
    // Rows are in the order of results_csv: runs, then test languages with a result.
    for (auto const& run : study.runs)
        for (auto const& l : eval::test_languages(study)) {
            if (!eval::find_result(study, run.name, l)) continue;
            if (!std::getline(csv, line)) break;
            auto const* o = outcome[{run.name, l}];
            auto const em = o ? o->exact_match_interval : std::nullopt, fi = o ? o->fidelity_interval : std::nullopt;
            with << line << ',' << number(o ? o->exact_match : std::nullopt) << ','
                 << number(em ? std::optional(em->low) : std::nullopt) << ','
                 << number(em ? std::optional(em->high) : std::nullopt) << ','
                 << number(fi ? std::optional(fi->low) : std::nullopt) << ','
                 << number(fi ? std::optional(fi->high) : std::nullopt) << '\n';
        }
    io::write_file_atomically(dir / "results.csv", with.str());
}

}  // namespace polyalpaca::study
