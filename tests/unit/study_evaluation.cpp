/// @file tests/unit/study_evaluation.cpp
/// @brief A run's evaluation.json keeps the per-prompt outcomes and the 95% intervals of exact match and fidelity,
///        reads back what it wrote, and reads an evaluation written before intervals existed.

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "polyalpaca/study/run_evaluation.hpp"
#include "polyalpaca/study/summary.hpp"

namespace ps = polyalpaca::study;

namespace {

std::filesystem::path temp_file(char const* name) {
    return std::filesystem::temp_directory_path() /
           ("polyalpaca_test_" + std::string(name) + "_" + std::to_string(::getpid()) + ".json");
}

}  // namespace

TEST_CASE("the intervals of a language's outcomes are seeded bootstrap intervals around their means",
          "[study_evaluation]") {
    std::map<std::string, double> by_prompt;
    for (int i = 0; i < 40; ++i) by_prompt["p" + std::to_string(i)] = i % 4 == 0 ? 1.0 : 0.0;  // 10 of 40
    auto const a = ps::evaluation_detail::interval_of(by_prompt, 42);
    auto const b = ps::evaluation_detail::interval_of(by_prompt, 42);
    REQUIRE(a.has_value());
    CHECK(a->estimate == Approx(0.25));
    CHECK(a->low < 0.25);
    CHECK(a->high > 0.25);
    CHECK(a->low == b->low);
    CHECK(a->high == b->high);
    CHECK(!ps::evaluation_detail::interval_of({}, 42).has_value());
}

TEST_CASE("evaluation.json keeps the intervals and per-prompt outcomes", "[study_evaluation]") {
    ps::RunEvaluation e{"run-a", "multilingual", "lora", "records 160", {"en"}, {}, 1.5};
    ps::LanguageOutcome o;
    o.responses = 4, o.correct = 1, o.answered = 4;
    o.exact_match = 0.25, o.fidelity = 0.75, o.loss = 2.5;
    o.exact_by_prompt = {{"a", 1}, {"b", 0}, {"c", 0}, {"d", 0}};
    o.fidelity_by_prompt = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 0}};
    o.exact_match_interval = polyalpaca::eval::Interval{0.25, 0.0, 0.75};
    o.fidelity_interval = polyalpaca::eval::Interval{0.75, 0.25, 1.0};
    e.by_language["en"] = o;
    auto const path = temp_file("evaluation");
    {
        std::ofstream(path) << ps::to_json(e).dump(2);
    }
    auto const back = ps::read_evaluation(path);
    auto const& l = back.by_language.at("en");
    REQUIRE(l.exact_match_interval.has_value());
    CHECK(l.exact_match_interval->estimate == 0.25);
    CHECK(l.exact_match_interval->low == 0.0);
    CHECK(l.exact_match_interval->high == 0.75);
    REQUIRE(l.fidelity_interval.has_value());
    CHECK(l.fidelity_interval->low == 0.25);
    CHECK(l.exact_by_prompt == o.exact_by_prompt);
    CHECK(l.fidelity_by_prompt == o.fidelity_by_prompt);

    // Written before intervals existed: the figures read, no interval, no per-prompt outcomes.
    auto older = ps::to_json(e);
    for (auto& [lang, r] : older["results"].items()) {
        r.erase("exact_match_interval");
        r.erase("fidelity_interval");
        r.erase("per_prompt");
    }
    {
        std::ofstream(path) << older.dump(2);
    }
    auto const old = ps::read_evaluation(path);
    CHECK(old.by_language.at("en").exact_match == 0.25);
    CHECK(!old.by_language.at("en").exact_match_interval.has_value());
    CHECK(old.by_language.at("en").exact_by_prompt.empty());
    std::filesystem::remove(path);
}

namespace {

/// A run of `label` whose prompts p0.. of language `lang` are right where `right(i)` says.
template <class Right>
ps::RunEvaluation run_with(std::string const& label, std::string const& lang, int prompts, Right right) {
    ps::RunEvaluation e{label, label, "lora", "records 160", {lang}, {}, 0};
    ps::LanguageOutcome o;
    for (int i = 0; i < prompts; ++i) {
        double const x = right(i) ? 1.0 : 0.0;
        o.exact_by_prompt["p" + std::to_string(i)] = x;
        o.fidelity_by_prompt["p" + std::to_string(i)] = 1.0;
        o.correct += std::size_t(x);
    }
    o.responses = o.answered = std::size_t(prompts);
    o.exact_match = double(o.correct) / prompts, o.fidelity = 1.0;
    e.by_language[lang] = o;
    return e;
}

}  // namespace

TEST_CASE("the best-strategy line says whether the lead is significant, prompt by prompt", "[study_evaluation]") {
    std::vector<std::string> const langs{"en"};
    // 200 prompts: multilingual right on 120, temperature on the same 120 and 8 more; monolingual on 60 of them.
    auto const multi = run_with("multilingual", "en", 200, [](int i) { return i < 120; });
    auto const close = run_with("temperature:2", "en", 200, [](int i) { return i < 128; });
    auto const mono = run_with("monolingual en", "en", 200, [](int i) { return i < 60; });
    auto const clear = ps::summary_markdown({mono, multi}, langs, std::nullopt);
    INFO(clear);
    // 60 prompts only multilingual got right, none the other way: McNemar p = 2 / 2^60.
    CHECK_THAT(clear, Catch::Contains("overall **multilingual** (60.0%), ahead of **monolingual** by +30.0 points"));
    CHECK_THAT(clear, Catch::Contains("McNemar p = 1.73e-18: significant"));
    auto const near = ps::summary_markdown({multi, close}, langs, std::nullopt);
    INFO(near);
    // 8 discordant prompts, all one way: p = 2 / 2^8 = 0.0078 (significant); with 4 more the other way it would not
    // be. A lead of 4 points that McNemar calls significant: the same prompts, answered better.
    CHECK_THAT(near, Catch::Contains("overall **temperature:2** (64.0%), ahead of **multilingual** by +4.0 points"));
    CHECK_THAT(near, Catch::Contains("McNemar p = 0.00781: significant"));
    auto const mixed = run_with("temperature:2", "en", 200, [](int i) { return (i < 116) || (i >= 190); });
    auto const level = ps::summary_markdown({multi, mixed}, langs, std::nullopt);
    INFO(level);
    // 10 prompts only temperature got right, 4 only multilingual: p = 0.18, not significant.
    CHECK_THAT(level, Catch::Contains("ahead of **multilingual** by +3.0 points"));
    CHECK_THAT(level, Catch::Contains("McNemar p = 0.18: not significant"));
    auto const same = run_with("temperature:2", "en", 200, [](int i) { return i < 120; });
    auto const tie = ps::summary_markdown({multi, same}, langs, std::nullopt);
    CHECK_THAT(tie, Catch::Contains("overall **multilingual** (60.0%), tied with **temperature:2**"));
}

TEST_CASE("a test line's \"fidelity\": false leaves its response out of language fidelity", "[study_evaluation]") {
    auto const dir = std::filesystem::temp_directory_path() / ("pa_fidelity_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto const tests = dir / "test_en.jsonl";
    auto const study = nlohmann::json{{"name", "s"},
                                      {"base_model", {{"preset", "bloom-study"}, {"checkpoint", "m"}}},
                                      {"methods", {"full"}},
                                      {"languages", {"en"}},
                                      {"strategies", {"monolingual"}},
                                      {"data", {{"en", "train.json"}}},
                                      {"test_sets", {{"en", tests.string()}}}};
    auto const s = ps::parse_study(study, "s.json", dir);
    auto const load = [&] {
        return ps::load_study_data(s, polyalpaca::PromptTemplate::alpaca(), {.training = false, .write_suite = false});
    };
    {
        std::ofstream(tests) << R"({"id": "a", "prompt": "Add 2 and 3.", "answer": "5", "fidelity": false})" "\n"
                             << R"({"id": "b", "prompt": "Describe a cat.", "answer": "A cat is an animal."})" "\n"
                             << R"({"id": "c", "prompt": "Say hello."})" "\n";
    }
    auto const d = load();
    CHECK_FALSE(d.answers.at("en").at("a").counts_for_fidelity);
    CHECK(d.answers.at("en").at("b").counts_for_fidelity);
    polyalpaca::eval::Response r;
    r.language = "en";
    for (auto const& [id, counts] :
         std::initializer_list<std::pair<char const*, bool>>{{"a", false}, {"b", true}, {"c", true}}) {  // c: no answer
        r.id = id;
        CHECK(ps::counts_for_fidelity(d, r) == counts);
    }
    {
        std::ofstream(tests) << R"({"id": "a", "prompt": "Add 2 and 3.", "answer": "5", "fidelity": "no"})" "\n";
    }
    CHECK_THROWS_WITH(load(), Catch::Contains("test_en.jsonl:1: \"fidelity\" is a JSON string, not true or false"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("a summary cell shows the interval the run's evaluation holds, as results.csv does", "[study_evaluation]") {
    std::vector<std::string> const langs{"en"};
    auto multi = run_with("multilingual", "en", 200, [](int i) { return i < 120; });
    multi.by_language["en"].exact_match_interval = polyalpaca::eval::Interval{0.6, 0.5, 0.7};
    auto const table = ps::summary_markdown({multi}, langs, std::nullopt);
    INFO(table);
    CHECK_THAT(table, Catch::Contains("| lora | records 160 | multilingual | 60.0 [50.0, 70.0] |"));
    // Without a stored interval the cell's is drawn from the prompts' outcomes: around 60%, about 7 points wide.
    multi.by_language["en"].exact_match_interval.reset();
    auto const drawn = ps::summary_rows({multi}, langs, ps::Measure::ExactMatch).front();
    auto const i = ps::summary_detail::cell_interval(drawn, "en");
    REQUIRE(i.has_value());
    CHECK(i->low < 0.6);
    CHECK(i->high > 0.6);
    CHECK(i->high - i->low == Approx(0.135).margin(0.03));
}
