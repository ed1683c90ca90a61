/// @file eval/report.hpp
/// @brief The study's report: per (run, test language) language fidelity, mean judge score and validation loss,
///        written as report.md (one table per model and method, and a computed answer), results.csv and two SVG plots.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/eval/run_info.hpp"
#include "polyalpaca/eval/score_table.hpp"
#include "polyalpaca/eval/svg_plot.hpp"
#include "polyalpaca/io/atomic_file.hpp"

namespace polyalpaca::eval {

/// What was measured for one run in one test language.
struct LanguageResult {
    std::string run, language;
    std::size_t responses = 0;       ///< responses generated (prompts of the test set that were read)
    std::optional<double> fidelity;  ///< share of responses CLD2 identified as the prompt's language (0..1)
    std::optional<double> score;     ///< mean judge score over the scored responses
    std::size_t scored = 0;          ///< responses with a numeric judge score
    std::optional<double> loss;      ///< validation loss (mean token cross-entropy, nats); perplexity = exp(loss)
    std::size_t lost = 0;            ///< test prompts of this language lost to bad lines
    bool zero_shot = false;          ///< the run did not train on this language
};

struct Study {
    std::vector<RunInfo> runs;
    std::vector<LanguageResult> results;
    std::map<std::string, std::string> confusion;  ///< run -> its confusion table (markdown)
    std::vector<std::string> notes;                ///< lines for the report's "Setup" section (decoding, data)
};

namespace report_detail {

/// A CSV field: as it is, or quoted (quotes doubled) when it holds a comma, a quote or a newline.
inline std::string csv_field(std::string const& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string out = "\"";
    for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

inline std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

inline std::string method_name(std::string const& m) {
    for (auto const& a : adapter_methods)
        if (a.method == m) return std::string(a.name);
    return m == "full" ? "full-parameter" : m;
}

}  // namespace report_detail

/// Every test language in the results, sorted.
inline std::vector<std::string> test_languages(Study const& s) {
    std::set<std::string> all;
    for (auto const& r : s.results) all.insert(r.language);
    return {all.begin(), all.end()};
}

inline LanguageResult const* find_result(Study const& s, std::string const& run, std::string const& lang) {
    for (auto const& r : s.results)
        if (r.run == run && r.language == lang) return &r;
    return nullptr;
}

/// True when any result has a judge score: the report then ranks by score, else by fidelity.
inline bool has_scores(Study const& s) {
    return std::any_of(s.results.begin(), s.results.end(), [](auto const& r) { return r.score.has_value(); });
}

/// The number the report ranks by: the judge score when the study has scores, else the fidelity.
inline std::optional<double> ranking_value(Study const& s, LanguageResult const* r) {
    if (!r) return std::nullopt;
    return has_scores(s) ? r->score : r->fidelity;
}

/// Runs grouped by (model, method), in first-seen order.
inline std::vector<std::vector<RunInfo const*>> groups_of(Study const& s) {
    std::vector<std::vector<RunInfo const*>> out;
    for (auto const& run : s.runs) {
        auto it = std::find_if(out.begin(), out.end(), [&](auto const& g) {
            return g.front()->model == run.model && g.front()->method == run.method;
        });
        if (it == out.end())
            out.push_back({&run});
        else
            it->push_back(&run);
    }
    return out;
}

/// A run's row label in its group: its strategy, with the run's name when two runs share the strategy.
inline std::string row_label(RunInfo const& run, std::vector<RunInfo const*> const& group) {
    auto const same = std::count_if(group.begin(), group.end(), [&](auto* r) { return r->strategy == run.strategy; });
    return same > 1 ? run.strategy + " (" + run.name + ")" : run.strategy;
}

/// Mean of the ranking value over the test languages the run has one for.
inline std::optional<double> run_mean(Study const& s, std::string const& run) {
    std::vector<double> values;
    for (auto const& lang : test_languages(s))
        if (auto const v = ranking_value(s, find_result(s, run, lang))) values.push_back(*v);
    return values.empty() ? std::nullopt : std::optional<double>(ScoreTable::mean_of(values));
}

namespace report_detail {

/// "a = b = c": names that tie.
inline std::string joined(std::vector<std::string> const& names) {
    std::string out;
    for (auto const& n : names) out += (out.empty() ? "" : " = ") + n;
    return out;
}

/// The labels of the runs whose value is the highest (lowest with `lowest`), within 1e-12, and that value.
inline std::pair<std::vector<std::string>, double> leaders(std::vector<std::pair<double, std::string>> const& values,
                                                           bool lowest = false) {
    std::vector<std::string> names;
    double best = 0;
    for (auto const& [v, name] : values) {
        bool const better = lowest ? v < best - 1e-12 : v > best + 1e-12;
        if (names.empty() || better)
            best = v, names = {name};
        else if (std::abs(v - best) <= 1e-12)
            names.push_back(name);
    }
    return {names, best};
}

}  // namespace report_detail

/// The answer, computed from the numbers: per (model, method), the best strategy on average and per test language
/// (by judge score, else fidelity; ties named together), and the lowest mean validation loss over the languages
/// every run of the group has a loss for.
inline std::string answer_paragraph(Study const& s) {
    using report_detail::fixed;
    using report_detail::joined;
    using report_detail::leaders;
    bool const scores = has_scores(s);
    int const digits = scores ? 2 : 3;
    std::ostringstream out;
    out << "Ranked by " << (scores ? "mean judge score" : "language fidelity (no judge scores given)")
        << ", higher is better.\n";
    for (auto const& group : groups_of(s)) {
        out << "\n**" << group.front()->model << ", " << report_detail::method_name(group.front()->method) << "**: ";
        std::vector<std::pair<double, std::string>> means;
        for (auto* run : group)
            if (auto const m = run_mean(s, run->name)) means.emplace_back(*m, row_label(*run, group));
        std::stable_sort(means.begin(), means.end(), [](auto const& a, auto const& b) { return a.first > b.first; });
        if (means.empty()) {
            out << (scores ? "no judge scores for these runs" : "no responses for these runs");
        } else if (auto const [top, value] = leaders(means); top.size() == means.size() && top.size() > 1) {
            out << "no strategy ahead on average: all " << top.size() << " runs at " << fixed(value, digits);
        } else {
            out << "best on average: **" << joined(top) << "** (" << fixed(value, digits) << ")";
            for (std::size_t i = top.size(); i < means.size(); ++i)
                out << (i == top.size() ? "; then " : ", ") << means[i].second << " (" << fixed(means[i].first, digits)
                    << ")";
        }
        if (!means.empty()) {
            out << ". Best per language:";
            char const* sep = " ";
            for (auto const& lang : test_languages(s)) {
                std::vector<std::pair<double, std::string>> values;
                for (auto* run : group)
                    if (auto const v = ranking_value(s, find_result(s, run->name, lang)))
                        values.emplace_back(*v, row_label(*run, group));
                if (values.empty()) continue;
                auto const [top, value] = leaders(values);
                out << sep << lang << ": "
                    << (top.size() == values.size() && top.size() > 1 ? std::string("all tie") : joined(top)) << " ("
                    << fixed(value, digits) << ")";
                sep = "; ";
            }
        }
        std::vector<std::string> common;  // languages with a loss for every run of the group
        for (auto const& lang : test_languages(s))
            if (std::all_of(group.begin(), group.end(), [&](auto* run) {
                    auto const* r = find_result(s, run->name, lang);
                    return r && r->loss;
                }))
                common.push_back(lang);
        if (!common.empty() && group.size() > 1) {
            std::vector<std::pair<double, std::string>> losses;
            for (auto* run : group) {
                double sum = 0;
                for (auto const& lang : common) sum += *find_result(s, run->name, lang)->loss;
                losses.emplace_back(sum / double(common.size()), row_label(*run, group));
            }
            auto const [top, value] = leaders(losses, true);
            std::string over;
            for (auto const& lang : common) over += (over.empty() ? "" : ", ") + lang;
            out << ". Lowest mean validation loss (" << over << "): **" << joined(top) << "** (" << fixed(value, 3)
                << ")";
        }
        out << ".\n";
    }
    return out.str();
}

/// report.md: the answer (unless `with_answer` is false: a caller that states its own), one table per (model, method)
/// (rows strategies, columns test languages, cells "fidelity / score / loss", zero-shot cells marked), the runs, lost
/// prompts, confusion tables and the plots.
inline std::string report_markdown(Study const& s, bool with_answer = true) {
    using report_detail::fixed;
    auto const langs = test_languages(s);
    std::ostringstream out;
    out << "# Evaluation report\n\n";
    if (with_answer) out << "## Answer\n\n" << answer_paragraph(s) << '\n';
    out << "## Results\n\n"
        << "Cells: language fidelity (share of responses in the prompt's language) / mean judge score / validation "
           "loss (nats per token). `–`: not measured. † zero-shot: the run did not train on that language.\n";
    for (auto const& group : groups_of(s)) {
        out << "\n### " << group.front()->model << ", " << report_detail::method_name(group.front()->method)
            << "\n\n| strategy |";
        for (auto const& l : langs) out << ' ' << l << " |";
        out << (has_scores(s) ? " mean score |\n|---|" : " mean fidelity |\n|---|");
        for (std::size_t i = 0; i <= langs.size(); ++i) out << "---|";
        out << '\n';
        for (auto* run : group) {
            out << "| " << row_label(*run, group) << " |";
            for (auto const& l : langs) {
                auto const* r = find_result(s, run->name, l);
                auto cell = [](std::optional<double> v, int digits, double scale = 1.0) {
                    return v ? fixed(*v * scale, digits) : std::string("–");
                };
                if (!r)
                    out << " – |";
                else
                    out << ' ' << (r->fidelity ? fixed(*r->fidelity * 100, 0) + "%" : "–") << " / " << cell(r->score, 2)
                        << " / " << cell(r->loss, 3) << (r->zero_shot ? " †" : "") << " |";
            }
            auto const m = run_mean(s, run->name);
            out << ' ' << (m ? fixed(*m, 3) : "–") << " |\n";
        }
    }
    out << "\n## Runs\n\n| run | model | method | strategy | training languages | records | tokens | training FLOPs |\n"
        << "|---|---|---|---|---|---:|---:|---:|\n";
    for (auto const& r : s.runs) {
        std::string trained;
        for (auto const& l : r.training_languages) trained += (trained.empty() ? "" : ", ") + l;
        char flops[32];
        std::snprintf(flops, sizeof flops, "%.3e", r.budget_flops);
        out << "| " << r.name << " | " << r.model << " | " << report_detail::method_name(r.method) << " | "
            << r.strategy << " | " << trained << " | " << r.budget_records << " | " << r.budget_tokens << " | " << flops
            << " |\n";
    }
    out << "\n## Test sets\n\n| language | prompts | lost to bad lines |\n|---|---:|---:|\n";
    for (auto const& l : langs) {
        std::size_t prompts = 0, lost = 0;
        for (auto const& r : s.results)
            if (r.language == l) prompts = std::max(prompts, r.responses), lost = std::max(lost, r.lost);
        out << "| " << l << " | " << prompts << " | " << lost << " |\n";
    }
    if (!s.notes.empty()) {
        out << "\n## Setup\n\n";
        for (auto const& n : s.notes) out << "- " << n << '\n';
    }
    if (!s.confusion.empty()) {
        out << "\n## Language confusion (CLD2)\n\nRows: the prompt's language; columns: the language CLD2 found in the "
               "response (`un`: too short or unknown).\n";
        for (auto const& [run, table] : s.confusion) out << "\n### " << run << "\n\n" << table;
    }
    out << "\n## Plots\n\n![score by language](plots/score_by_language.svg)\n\n"
        << "![budget against score](plots/budget_vs_score.svg)\n";
    return out.str();
}

/// results.csv: one row per (run, test language).
inline std::string results_csv(Study const& s) {
    auto const quote = report_detail::csv_field;
    auto num = [](std::optional<double> v) { return v ? report_detail::fixed(*v, 6) : std::string(); };
    std::ostringstream out;
    out << "run,model,method,strategy,language,zero_shot,responses,fidelity,judge_score,judged,validation_loss,"
           "perplexity,lost_prompts,budget_records,budget_tokens,budget_flops\n";
    for (auto const& run : s.runs)
        for (auto const& lang : test_languages(s)) {
            auto const* r = find_result(s, run.name, lang);
            if (!r) continue;
            char flops[32];
            std::snprintf(flops, sizeof flops, "%.6e", run.budget_flops);
            out << quote(run.name) << ',' << quote(run.model) << ',' << run.method << ',' << quote(run.strategy) << ','
                << quote(lang) << ',' << (r->zero_shot ? 1 : 0) << ',' << r->responses << ',' << num(r->fidelity) << ','
                << num(r->score) << ',' << r->scored << ',' << num(r->loss) << ','
                << num(r->loss ? std::optional<double>(std::exp(*r->loss)) : std::nullopt) << ',' << r->lost << ','
                << run.budget_records << ',' << run.budget_tokens << ',' << flops << '\n';
        }
    return out.str();
}

/// Grouped bars: per test language, one bar per run (judge score, or fidelity without scores).
inline std::string score_plot(Study const& s) {
    BarChart c;
    bool const scores = has_scores(s);
    c.title = scores ? "Mean judge score per test language" : "Language fidelity per test language";
    c.y_label = scores ? "judge score" : "fidelity (share in the prompt's language)";
    c.groups = test_languages(s);
    for (auto const& group : groups_of(s))
        for (auto* run : group) {
            BarSeries series{run->model + " " + run->method + " " + row_label(*run, group), {}};
            for (auto const& l : c.groups) series.values.push_back(ranking_value(s, find_result(s, run->name, l)));
            c.series.push_back(std::move(series));
        }
    return bar_chart_svg(c);
}

/// Budget (training tokens) against the run's mean score, one line per (model, method, strategy).
inline std::string budget_plot(Study const& s) {
    LineChart c;
    bool const scores = has_scores(s);
    c.title = scores ? "Training budget against mean judge score" : "Training budget against mean fidelity";
    c.x_label = "training tokens";
    c.y_label = scores ? "mean judge score" : "mean fidelity";
    double lo = INFINITY, hi = 0;
    for (auto const& run : s.runs) {
        auto const m = run_mean(s, run.name);
        if (!m) continue;
        auto const name = run.model + " " + run.method + " " + run.strategy;
        auto it = std::find_if(c.series.begin(), c.series.end(), [&](auto const& x) { return x.name == name; });
        if (it == c.series.end()) it = c.series.insert(c.series.end(), LineSeries{name, {}});
        it->points.emplace_back(double(run.budget_tokens), *m);
        lo = std::min(lo, double(run.budget_tokens)), hi = std::max(hi, double(run.budget_tokens));
    }
    c.log_x = lo > 0 && hi / lo > 100;
    return line_chart_svg(c);
}

/// Writes report.md, results.csv, plots/score_by_language.svg and plots/budget_vs_score.svg under `dir`, each
/// atomically.
inline void write_report(std::filesystem::path const& dir, Study const& s) {
    std::filesystem::create_directories(dir / "plots");
    io::write_file_atomically(dir / "report.md", report_markdown(s));
    io::write_file_atomically(dir / "results.csv", results_csv(s));
    io::write_file_atomically(dir / "plots" / "score_by_language.svg", score_plot(s));
    io::write_file_atomically(dir / "plots" / "budget_vs_score.svg", budget_plot(s));
}

}  // namespace polyalpaca::eval
