/// @file tests/unit/eval_report.cpp
/// @brief The report: tables, CSV, well-formed SVG, an answer that follows the numbers when they change, judge
///        scores joined on (run, language, id), and run directories read from run_summary.json / run_config.json.

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "polyalpaca/eval/report.hpp"
#include "polyalpaca/eval/score_table.hpp"

using namespace polyalpaca;
using Catch::Matchers::Contains;

namespace {

/// Checks that `svg` is well-formed XML as far as a report needs: every tag closed in order, quoted attributes, no
/// stray '<' or '&' in text. Returns "" or what is wrong.
std::string xml_problem(std::string const& svg) {
    std::vector<std::string> open;
    std::size_t i = 0;
    while (i < svg.size()) {
        if (svg[i] == '&') {
            auto const semi = svg.find(';', i);
            auto const entity = svg.substr(i, semi == std::string::npos ? 8 : semi - i + 1);
            if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" && entity != "&apos;")
                return "bad entity at " + std::to_string(i);
            ++i;
            continue;
        }
        if (svg[i] != '<') {
            if (svg[i] == '>') return "stray '>' at " + std::to_string(i);
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        bool in_quote = false;
        while (j < svg.size() && (in_quote || svg[j] != '>')) {
            if (svg[j] == '"') in_quote = !in_quote;
            if (!in_quote && svg[j] == '<') return "'<' inside a tag at " + std::to_string(j);
            ++j;
        }
        if (j == svg.size()) return "unclosed tag at " + std::to_string(i);
        std::string tag = svg.substr(i + 1, j - i - 1);
        if (tag.starts_with('/')) {
            auto const name = tag.substr(1);
            if (open.empty() || open.back() != name) return "</" + name + "> closes nothing open";
            open.pop_back();
        } else if (!tag.ends_with('/')) {
            open.push_back(tag.substr(0, tag.find_first_of(" \n")));
        }
        i = j + 1;
    }
    if (!open.empty()) return "<" + open.back() + "> never closed";
    return {};
}

/// Checks that every coordinate (attributes x, y, x1, x2, y1, y2, cx, cy, width, height, and the numbers of points
/// and d) is a finite number near the canvas. Returns "" or the first bad one.
std::string coordinate_problem(std::string const& svg) {
    static std::regex const attribute(R"re(\s(x|y|x1|x2|y1|y2|cx|cy|width|height|points|d)="([^"]*)")re");
    for (std::sregex_iterator it(svg.begin(), svg.end(), attribute), end; it != end; ++it) {
        std::string value = (*it)[2];
        for (char& c : value)
            if (c == ',' || c == 'M' || c == 'V' || c == 'h') c = ' ';  // the path commands the charts write
        std::istringstream in(value);
        for (std::string token; in >> token;) {
            char* stop = nullptr;
            double const v = std::strtod(token.c_str(), &stop);
            if (*stop != '\0' || !std::isfinite(v) || v < -100 || v > 1000)
                return (*it)[1].str() + "=\"" + (*it)[2].str() + "\"";
        }
    }
    return {};
}

eval::RunInfo run(std::string name, std::string strategy, std::vector<std::string> langs, std::int64_t tokens) {
    eval::RunInfo r;
    r.name = std::move(name);
    r.model = "bloom-mini";
    r.method = "lora";
    r.strategy = std::move(strategy);
    r.training_languages = std::move(langs);
    r.budget_records = tokens / 10;
    r.budget_tokens = tokens;
    r.budget_flops = 6.0 * double(tokens) * 1e6;
    return r;
}

/// Three strategies, test languages en, fr and de (de zero-shot for all, fr zero-shot for the monolingual run).
eval::Study study() {
    eval::Study s;
    s.runs = {run("mono", "monolingual", {"en"}, 1000), run("multi", "multilingual", {"en", "fr"}, 2000),
              run("down", "downsampled", {"en", "fr"}, 1000)};
    auto add = [&s](std::string r, std::string l, double fid, std::optional<double> score, double loss) {
        eval::LanguageResult x;
        x.run = r;
        x.language = l;
        x.responses = 4;
        x.fidelity = fid;
        x.score = score;
        x.scored = score ? 4 : 0;
        x.loss = loss;
        x.lost = l == "fr" ? 1 : 0;
        for (auto const& info : s.runs)
            if (info.name == r) x.zero_shot = !info.trained_on(l);
        s.results.push_back(x);
    };
    add("mono", "en", 1.00, 4.0, 1.1);
    add("mono", "fr", 0.25, 1.5, 2.9);
    add("mono", "de", 0.00, 1.0, 3.5);
    add("multi", "en", 1.00, 3.8, 1.2);
    add("multi", "fr", 1.00, 3.9, 1.3);
    add("multi", "de", 0.50, 2.0, 3.0);
    add("down", "en", 0.75, 3.5, 1.3);
    add("down", "fr", 1.00, 3.6, 1.4);
    add("down", "de", 0.50, 2.5, 3.1);
    s.notes = {"decoding: greedy"};
    return s;
}

std::filesystem::path temp_dir(std::string const& name) {
    auto const dir =
        std::filesystem::temp_directory_path() / ("polyalpaca_eval_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace

TEST_CASE("report.md: the table per model and method, zero-shot marks, runs and test sets", "[eval][report]") {
    auto const md = eval::report_markdown(study());
    CHECK_THAT(md, Contains("### bloom-mini, LoRA\n\n| strategy | de | en | fr | mean score |"));
    CHECK_THAT(md,
               Contains("| monolingual | 0% / 1.00 / 3.500 † | 100% / 4.00 / 1.100 | 25% / 1.50 / 2.900 † | 2.167 |"));
    CHECK_THAT(md,
               Contains("| multilingual | 50% / 2.00 / 3.000 † | 100% / 3.80 / 1.200 | 100% / 3.90 / 1.300 | 3.233 |"));
    CHECK_THAT(md, Contains("| down | bloom-mini | LoRA | downsampled | en, fr | 100 | 1000 | 6.000e+09 |"));
    CHECK_THAT(md, Contains("| fr | 4 | 1 |"));
    CHECK_THAT(md, Contains("- decoding: greedy"));
    CHECK_THAT(md, Contains("plots/score_by_language.svg"));
}

TEST_CASE("the answer follows the numbers", "[eval][report]") {
    auto s = study();
    auto const answer = eval::answer_paragraph(s);
    CHECK_THAT(answer, Contains("Ranked by mean judge score"));
    CHECK_THAT(answer,
               Contains("best on average: **multilingual** (3.23); then downsampled (3.20), monolingual (2.17)"));
    CHECK_THAT(answer, Contains("de: downsampled (2.50); en: monolingual (4.00); fr: multilingual (3.90). Lowest "
                                "mean validation loss (de, en, fr): **multilingual** (1.833)."));

    // Downsampled now wins English and the average.
    for (auto& r : s.results)
        if (r.run == "down" && r.language == "en") r.score = 4.5;
    auto const changed = eval::answer_paragraph(s);
    CHECK_THAT(changed, Contains("best on average: **downsampled** (3.53)"));
    CHECK_THAT(changed, Contains("en: downsampled (4.50)"));

    // Lower losses for the downsampled run move the loss sentence, not the ranking by score.
    for (auto& r : s.results)
        if (r.run == "down") *r.loss -= 0.5;
    CHECK_THAT(eval::answer_paragraph(s), Contains("(de, en, fr): **downsampled** (1.433)") &&
                                              Contains("best on average: **downsampled** (3.53)"));

    // A tie names both; without judge scores the ranking is by fidelity.
    for (auto& r : s.results) r.score.reset();
    auto const by_fidelity = eval::answer_paragraph(s);
    CHECK_THAT(by_fidelity, Contains("Ranked by language fidelity"));
    CHECK_THAT(by_fidelity, Contains("best on average: **multilingual** (0.833)"));
    CHECK_THAT(by_fidelity, Contains("de: multilingual = downsampled (0.500)"));
    CHECK_THAT(by_fidelity, Contains("en: monolingual = multilingual (1.000)"));

    // Everything equal: no strategy ahead, every language a tie.
    for (auto& r : s.results) r.fidelity = 0.0;
    auto const tied = eval::answer_paragraph(s);
    CHECK_THAT(tied, Contains("no strategy ahead on average: all 3 runs at 0.000. Best per language: de: all tie "
                              "(0.000); en: all tie (0.000); fr: all tie (0.000)."));
}

TEST_CASE("results.csv: one row per run and language", "[eval][report]") {
    auto const csv = eval::results_csv(study());
    std::istringstream in(csv);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    REQUIRE(lines.size() == 10);
    CHECK(lines[0] ==
          "run,model,method,strategy,language,zero_shot,responses,fidelity,judge_score,judged,"
          "validation_loss,perplexity,lost_prompts,budget_records,budget_tokens,budget_flops");
    CHECK(lines[1] ==
          "mono,bloom-mini,lora,monolingual,de,1,4,0.000000,1.000000,4,3.500000,33.115452,0,100,1000,"
          "6.000000e+09");
    CHECK(lines[5] ==
          "multi,bloom-mini,lora,multilingual,en,0,4,1.000000,3.800000,4,1.200000,3.320117,0,200,2000,"
          "1.200000e+10");
}

TEST_CASE("the SVG plots are well-formed and carry every bar and point", "[eval][report]") {
    auto s = study();
    s.runs[0].model = "a<b & \"c\"";  // names are escaped
    auto const bars = eval::score_plot(s);
    CHECK(xml_problem(bars).empty());
    INFO(xml_problem(bars));
    std::size_t rects = 0;
    for (auto at = bars.find("<rect x="); at != std::string::npos; at = bars.find("<rect x=", at + 1)) ++rects;
    CHECK(rects == 9 + 3);  // 9 bars and 3 legend swatches
    CHECK_THAT(bars, Contains("a&lt;b &amp; &quot;c&quot;"));
    auto const line = eval::budget_plot(s);
    CHECK(xml_problem(line).empty());
    std::size_t circles = 0;
    for (auto at = line.find("<circle"); at != std::string::npos; at = line.find("<circle", at + 1)) ++circles;
    CHECK(circles == 3);
    CHECK(xml_problem("<svg><g></svg>") == "</svg> closes nothing open");

    auto const dir = temp_dir("report_files");
    eval::write_report(dir, study());
    for (char const* f : {"report.md", "results.csv", "plots/score_by_language.svg", "plots/budget_vs_score.svg"})
        CHECK(std::filesystem::file_size(dir / f) > 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("the SVG plots leave out values that are not finite, and any finite values give finite coordinates",
          "[eval][report]") {
    double const inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    auto const check = [](std::string const& svg) {
        INFO(svg);
        CHECK(xml_problem(svg).empty());
        CHECK(coordinate_problem(svg).empty());
        INFO(coordinate_problem(svg));
        for (char const* bad : {"nan", "inf", "NaN", "INF"}) CHECK(svg.find(bad) == std::string::npos);
    };
    auto const count = [](std::string const& svg, std::string const& what) {
        std::size_t n = 0;
        for (auto at = svg.find(what); at != std::string::npos; at = svg.find(what, at + 1)) ++n;
        return n;
    };
    // One series of each kind of value: the first group's infinite mean made the evaluator crash (ticks() found no
    // tick for an infinite axis and y_range read the back of the empty list).
    std::vector<std::vector<std::optional<double>>> const cases = {
        {inf, 3.0, 4.0}, {nan, 2.0, std::nullopt}, {-inf, inf, nan}, {1e308, 4.0, 2.0}, {-1e308, 1e308, 3.0},
        {1.7976931348623157e308, 1.0, 2.0}, {5e-324, 0.0, 1e-320}};
    for (auto const& values : cases) {
        eval::BarChart bars{"t", "score", {"en", "fr", "de"}, {{"run a", values, {}}}};
        bars.series[0].intervals = {std::pair{-inf, 2.0}, std::pair{1.0, 5.0}, std::pair{nan, nan}};
        auto const svg = eval::bar_chart_svg(bars);
        check(svg);
        std::size_t finite = 0;
        for (auto const& v : values) finite += v && std::isfinite(*v) ? 1 : 0;
        CHECK(count(svg, "<rect x=") == finite + 1);  // the finite bars and one legend swatch
        CHECK(count(svg, "<path") == (std::isfinite(values[1].value_or(nan)) ? 1u : 0u));  // the finite interval only

        eval::LineChart line{"t", "tokens", "score", {{"run a", {}}}};
        for (std::size_t i = 0; i < values.size(); ++i)
            line.series[0].points.emplace_back(1000.0 * double(i + 1), values[i].value_or(nan));
        line.series[0].points.emplace_back(inf, 3.0);
        line.series[0].points.emplace_back(nan, 3.0);
        for (bool log_x : {false, true}) {
            line.log_x = log_x;
            auto const svg_line = eval::line_chart_svg(line);
            check(svg_line);
            CHECK(count(svg_line, "<circle") == finite);
        }
    }
    eval::LineChart far{"t", "x", "y", {{"run a", {{-1e308, 1e308}, {1e308, -1e308}}}, {"run b", {{1e17, 1.0}}}}};
    check(eval::line_chart_svg(far));
    eval::LineChart one{"t", "x", "y", {{"run a", {{1e17, 1.0}}}}};
    check(eval::line_chart_svg(one));

    for (auto const& [lo, hi] : std::vector<std::pair<double, double>>{{-1e308, 1e308}, {0, 1.7976931348623157e308},
                                                                        {-inf, 1}, {nan, nan}, {1e17, 1e17 + 16},
                                                                        {3, 3}, {0, 5e-324}}) {
        auto const t = eval::svg_detail::ticks(lo, hi);
        CHECK_FALSE(t.empty());
        for (double v : t) CHECK(std::isfinite(v));
    }
    CHECK(eval::svg_detail::ticks(-1e308, 1e308) == std::vector<double>{-1e308, -5e307, 0, 5e307, 1e308});
    CHECK(eval::svg_detail::ticks(0, 5) == std::vector<double>{0, 1, 2, 3, 4, 5});

    // Through the report: a judge score of 1e308 and one that overflowed to infinity.
    auto s = study();
    s.results[0].score = 1e308;
    s.results[3].score = inf;
    check(eval::score_plot(s));
    check(eval::budget_plot(s));
}

TEST_CASE("judge scores: the mean of finite scores does not overflow", "[eval][report]") {
    eval::ScoreTable table;
    std::vector<eval::Response> rs(3);
    for (int i = 0; i < 3; ++i) {
        rs[i].language = "fr", rs[i].id = std::to_string(i);
        table.add("huge", "fr", rs[i].id, 1e308);
        table.add("mixed", "fr", rs[i].id, i == 0 ? -1e308 : 1e308);
        table.add("plain", "fr", rs[i].id, 0.1 * (i + 1));
    }
    CHECK(table.mean("huge", "fr", rs).mean == 1e308);
    CHECK(table.mean("huge", "fr", rs).scored == 3);
    CHECK(table.mean("mixed", "fr", rs).mean == Approx(1e308 / 3).epsilon(1e-12));
    CHECK(table.mean("plain", "fr", rs).mean == (0.1 + 0.2 + 0.30000000000000004) / 3);  // the plain sum, as before
}

TEST_CASE("judge scores: read, joined on (run, language, id), nulls counted", "[eval][report]") {
    auto const dir = temp_dir("judge_scores");
    auto const path = dir / "scores.jsonl";
    std::ofstream(path) << R"({"run":"multi","language":"fr","id":"1","score":4,"raw":"4"})"
                        << "\n"
                        << R"({"run":"multi","language":"fr","id":"2","score":null,"raw":"??"})"
                        << "\n"
                        << R"({"run":"multi","language":"fr","id":"3","score":2.5,"raw":"2.5"})"
                        << "\n"
                        << R"({"run":"multi","language":"fr","id":"9","score":1,"raw":"1"})"
                        << "\n"
                        << R"({"run":"mono","language":"fr","id":"1","score":0,"raw":"0"})"
                        << "\n";
    auto const table = eval::ScoreTable::read(path);
    std::vector<eval::Response> rs(4);
    for (int i = 0; i < 4; ++i) rs[i].language = "fr", rs[i].id = std::to_string(i + 1);
    auto const m = table.mean("multi", "fr", rs);
    CHECK(m.mean == Approx(3.25));
    CHECK(m.scored == 2);
    CHECK(m.unscored == 2);  // id 2 null, id 4 missing; id 9 is not a response
    std::ofstream(path, std::ios::app) << R"({"run":"mono","language":"fr","id":"1","score":3,"raw":"3"})"
                                       << "\n";
    CHECK_THROWS_WITH(eval::ScoreTable::read(path), Contains("scores.jsonl:6: a second score"));
    std::ofstream(path) << R"({"run":"mono","language":"fr","id":"1","score":"high"})"
                        << "\n";
    CHECK_THROWS_WITH(eval::ScoreTable::read(path), Contains("scores.jsonl:1: \"score\""));
    std::filesystem::remove_all(dir);
}

TEST_CASE("run directories: summary, config, weights; fallbacks and errors", "[eval][report]") {
    auto const dir = temp_dir("runs");
    auto const a = dir / "multi_run";
    std::filesystem::create_directories(a / "adapter");
    std::ofstream(a / "adapter" / "adapter_config.json") << "{}";
    std::ofstream(a / "run_summary.json") << R"({"spent": {"records": 8, "tokens": 640, "flops": 1.5e9,
        "languages": {"en": {"records": 4}, "fr": {"records": 4}}},
        "best_validation_loss_per_language": {"en": 1.25, "fr": 1.5}})";
    auto info = eval::read_run_info(a, "bloom-mini");
    CHECK(info.name == "multi_run");
    CHECK(info.method == "lora");
    CHECK(info.strategy == "unknown");
    CHECK(info.training_languages == std::vector<std::string>{"en", "fr"});
    CHECK(info.budget_tokens == 640);
    CHECK(info.budget_flops == 1.5e9);
    CHECK(info.validation_loss.at("fr") == 1.5);
    std::ofstream(a / "run_config.json") << R"({"method": "lora", "strategy": "multilingual",
        "languages": ["en", "fr"], "template": "alpaca_legacy"})";
    info = eval::read_run_info(a, "bloom-mini");
    CHECK(info.strategy == "multilingual");
    CHECK(info.prompt_template == "alpaca_legacy");
    CHECK(info.trained_on("fr"));
    CHECK_FALSE(info.trained_on("de"));
    CHECK(eval::find_run_dirs(dir) == std::vector<std::filesystem::path>{a});
    std::filesystem::create_directories(dir / "empty");
    std::vector<std::filesystem::path> unfinished;
    CHECK(eval::find_run_dirs(dir, &unfinished) == std::vector<std::filesystem::path>{a});
    CHECK(unfinished == std::vector<std::filesystem::path>{dir / "empty"});
    CHECK_THROWS_WITH(eval::read_run_info(dir / "empty", "m"), Contains("no run_summary.json"));
    std::ofstream(a / "run_config.json") << R"({"method": "qlora", "strategy": "multilingual",
        "languages": ["en", "fr"]})";
    CHECK_THROWS_WITH(eval::read_run_info(a, "m"), Contains("\"method\" is \"qlora\""));
    std::ofstream(a / "run_config.json") << R"({"method": "lora", "strategy": "multilingual", "languages": ["en"]})";
    std::filesystem::remove(a / "adapter" / "adapter_config.json");
    CHECK_THROWS_WITH(eval::read_run_info(a, "m"), Contains("neither adapter/adapter_config.json"));
    std::filesystem::remove_all(dir);
}
