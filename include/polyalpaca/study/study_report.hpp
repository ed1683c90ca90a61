/// @file study/study_report.hpp
/// @brief The study's files: report.md (the summary, its plots with interval bars, exact match per task, then
///        eval/report.hpp's report), results.csv (eval/report.hpp's columns with exact match and the 95% intervals),
///        tasks.csv and plots/, written atomically.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/eval/report.hpp"
#include "polyalpaca/eval/svg_plot.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/study/run_evaluation.hpp"
#include "polyalpaca/study/summary.hpp"

namespace polyalpaca::study {

/// The summary's bars of `measure` (%): per test language (zero-shot marked †) one bar per strategy of each (method,
/// budget), with its 95% interval.
inline eval::BarChart summary_chart(std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                                    Measure measure) {
    bool const em = measure == Measure::ExactMatch;
    auto const rows = summary_rows(runs, langs, measure);
    std::set<std::string> budgets;
    for (auto const& r : rows) budgets.insert(r.budget);
    eval::BarChart c;
    c.title = em ? "Exact match by test language and strategy (95% intervals)"
                 : "Language fidelity by test language and strategy (95% intervals)";
    c.y_label = em ? "exact match (%)" : "answered in the prompt's language (%)";
    for (auto const& l : langs) {
        bool zero_shot = false;
        for (auto const& r : rows)
            if (auto const it = r.zero_shot.find(l); it != r.zero_shot.end()) zero_shot = it->second;
        c.groups.push_back(l + (zero_shot ? " †" : ""));
    }
    for (auto const& r : rows) {
        eval::BarSeries series{r.method + " " + r.strategy + (budgets.size() > 1 ? " " + r.budget : ""), {}, {}};
        for (auto const& l : langs) {
            auto const it = r.value.find(l);
            auto const v = it == r.value.end() ? std::nullopt : it->second;
            series.values.push_back(v ? std::optional<double>(*v * 100) : std::nullopt);
            auto const i = summary_detail::cell_interval(r, l);
            series.intervals.push_back(i ? std::optional(std::pair{i->low * 100, i->high * 100}) : std::nullopt);
        }
        c.series.push_back(std::move(series));
    }
    return c;
}

/// "full monolingual en": a run's column label in the per-task table (with its budget when the study has several).
inline std::string run_column(RunEvaluation const& r, bool several_budgets) {
    return r.method + " " + r.label + (several_budgets ? " " + r.budget : "");
}

/// The per-task section of report.md: one row per task, one column per run, each cell the run's exact match on the
/// task over its tuned languages (each language weighted equally); tasks.csv has every language.
inline std::string per_task_markdown(std::vector<RunEvaluation> const& runs) {
    std::set<std::string> tasks, budgets;
    for (auto const& r : runs) {
        budgets.insert(r.budget);
        for (auto const& [l, o] : r.by_language)
            for (auto const& [task, acc] : o.tasks) tasks.insert(task);
    }
    std::ostringstream out;
    out << "## Exact match per task\n\nAccuracy (%) of each run on each task over the languages it was tuned on; "
           "every test language in tasks.csv.\n\n| task |";
    for (auto const& r : runs) out << ' ' << run_column(r, budgets.size() > 1) << " |";
    out << "\n|---|";
    for (std::size_t i = 0; i < runs.size(); ++i) out << "---:|";
    out << '\n';
    for (auto const& task : tasks) {
        out << "| " << task << " |";
        for (auto const& r : runs) {
            double sum = 0;
            int n = 0;
            for (auto const& l : r.languages)
                if (auto const it = r.by_language.find(l); it != r.by_language.end())
                    if (auto const t = it->second.tasks.find(task); t != it->second.tasks.end()) sum += t->second, ++n;
            out << ' ' << (n > 0 ? summary_detail::percent(sum / n) : "–") << " |";
        }
        out << '\n';
    }
    return out.str();
}

/// tasks.csv: exact match per run, test language and task.
inline std::string tasks_csv(std::vector<RunEvaluation> const& runs) {
    std::ostringstream out;
    out << "run,method,strategy,budget,language,zero_shot,task,exact_match\n";
    for (auto const& r : runs)
        for (auto const& [l, o] : r.by_language)
            for (auto const& [task, acc] : o.tasks)
                out << r.name << ',' << r.method << ',' << eval::report_detail::csv_field(r.label) << ','
                    << eval::report_detail::csv_field(r.budget) << ',' << l << ',' << (r.zero_shot(l) ? 1 : 0) << ','
                    << task << ',' << eval::report_detail::fixed(acc, 6) << '\n';
    return out.str();
}

/// report.md (the summary (summary_markdown's), its plots and the per-task table, then eval/report.hpp's sections
/// without their untested answer), results.csv (with exact_match and the 95% bootstrap intervals of exact match and fidelity),
/// tasks.csv, plots/, written atomically under `dir`.
inline void write_study_report(std::filesystem::path const& dir, eval::Study const& study,
                               std::vector<RunEvaluation> const& runs, std::vector<std::string> const& langs,
                               std::string const& summary, std::string const& header) {
    eval::write_report(dir, study);
    std::ostringstream md;
    md << "# Study report\n\n" << header << "\n## Summary\n\n" << summary;
    md << '\n';
    for (auto const measure : {Measure::ExactMatch, Measure::Fidelity}) {
        if (measure == Measure::ExactMatch ? !has_exact_match(runs) : !has_fidelity(runs)) continue;
        auto const name = measure == Measure::ExactMatch ? "exact_match_by_language" : "fidelity_by_language";
        io::write_file_atomically(dir / "plots" / (std::string(name) + ".svg"),
                                  eval::bar_chart_svg(summary_chart(runs, langs, measure)));
        md << "![" << name << "](plots/" << name << ".svg)\n";
    }
    if (has_exact_match(runs)) md << "\n" << per_task_markdown(runs);
    auto report = eval::report_markdown(study, /*with_answer*/ false);  // the summary's lines, tested, answer
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
    if (has_exact_match(runs)) io::write_file_atomically(dir / "tasks.csv", tasks_csv(runs));
}

}  // namespace polyalpaca::study
