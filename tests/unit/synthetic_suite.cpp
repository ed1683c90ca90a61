/// @file tests/unit/synthetic_suite.cpp
/// @brief The synthetic multilingual suite: the same seed gives the same bytes, every answer checks out when
/// recomputed from its input, word answers belong to the prompt's language, splits are disjoint, zero-shot
/// languages are never tuned on, all text is UTF-8; and the exact-match scorer's normalisation.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/data/alpaca.hpp"
#include "polyalpaca/data/bad_records.hpp"
#include "polyalpaca/data/synthetic/exact_match.hpp"
#include "polyalpaca/data/synthetic/suite_files.hpp"
#include "polyalpaca/eval/language_id.hpp"
#include "polyalpaca/eval/test_set.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

using namespace polyalpaca;
using namespace polyalpaca::synthetic;
using Catch::Matchers::Contains;

namespace {

namespace utf8 = tokenizer::utf8;

std::string error_of(auto&& run) {
    try {
        run();
    } catch (Error const& e) {
        return e.what();
    }
    return "no error";
}

std::string read_bytes(std::filesystem::path const& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::filesystem::path fresh_dir(std::string const& name) {
    auto const dir = std::filesystem::temp_directory_path() / ("polyalpaca_synthetic_suite_" + name);
    std::filesystem::remove_all(dir);
    return dir;
}

std::vector<char32_t> code_points(std::string const& s) {
    std::vector<char32_t> out;
    for (std::size_t i = 0; i < s.size();) {
        std::size_t length = 0;
        out.push_back(utf8::decode(s, i, length));
        i += length;
    }
    return out;
}

/// Whether every letter of `s` is of the language's script (digits, spaces and punctuation aside).
bool letters_in_script(std::string const& s, std::string_view script) {
    for (char32_t c : code_points(s)) {
        bool const ascii_letter = (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
        bool const cyrillic = c >= 0x400 && c <= 0x4FF;
        bool const han = c >= 0x4E00 && c <= 0x9FFF;
        bool const latin = ascii_letter || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
        if (script == "Latin" && (cyrillic || han)) return false;
        if (script == "Cyrillic" && (latin || han)) return false;
        if (script == "Han" && (latin || cyrillic)) return false;
    }
    return true;
}

long to_number(std::string const& s) {
    REQUIRE(!s.empty());
    REQUIRE(std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
    return std::stol(s);
}

/// Replaces the one `placeholder` of `text` by `value`.
void substitute(std::string& text, std::string const& placeholder, std::string const& value) {
    auto const at = text.find(placeholder);
    REQUIRE(at != std::string::npos);
    text.replace(at, placeholder.size(), value);
}

bool in_vocabulary(LanguagePack const& pack, std::string const& word) {
    for (std::size_t i = 0; i < vocabulary_size; ++i)
        if (pack.vocabulary_word(i) == word) return true;
    return false;
}

/// Recomputes the answer of a record from its input alone, as a reader of the task would.
void check_answer(SuiteItem const& item, LanguagePack const& pack) {
    auto const& r = item.record;
    INFO(r.id << " " << task_name(item.task) << ": " << r.instruction << " | " << r.input << " => " << r.output);
    auto const items = split_list(r.input, pack.list_separator);
    switch (item.task) {
        case TaskKind::Add:
            REQUIRE(items.size() == 2);
            CHECK(to_number(r.output) == to_number(items[0]) + to_number(items[1]));
            break;
        case TaskKind::Subtract:
            REQUIRE(items.size() == 2);
            CHECK(to_number(items[0]) >= to_number(items[1]));
            CHECK(to_number(r.output) == to_number(items[0]) - to_number(items[1]));
            break;
        case TaskKind::Count:
            CHECK(to_number(r.output) == long(items.size()));
            for (auto const& w : items) CHECK(in_vocabulary(pack, w));
            break;
        case TaskKind::SortNumbers: {
            std::vector<long> numbers;
            for (auto const& s : items) numbers.push_back(to_number(s));
            std::sort(numbers.begin(), numbers.end());
            std::vector<long> answered;
            for (auto const& s : split_list(r.output, pack.list_separator)) answered.push_back(to_number(s));
            CHECK(answered == numbers);
            CHECK(std::adjacent_find(numbers.begin(), numbers.end()) == numbers.end());
            break;
        }
        case TaskKind::Copy: CHECK(r.output == r.input); break;
        case TaskKind::FirstWord: CHECK(r.output == items.front()); break;
        case TaskKind::LastWord: CHECK(r.output == items.back()); break;
        case TaskKind::LongerWord: {
            REQUIRE(items.size() == 2);
            auto const a = code_points(items[0]).size(), b = code_points(items[1]).size();
            CHECK(a != b);
            CHECK(r.output == (a > b ? items[0] : items[1]));
            break;
        }
        case TaskKind::NumberWord: {
            auto const n = to_number(r.input);
            REQUIRE(n >= 1);
            REQUIRE(n <= 10);
            CHECK(r.output == pack.number_words[std::size_t(n - 1)]);
            break;
        }
        case TaskKind::SentenceFirst:
        case TaskKind::SentenceLast: {
            bool const first = item.task == TaskKind::SentenceFirst;
            auto expected = std::string(pack.sentence(first ? SentenceKind::First : SentenceKind::Last));
            substitute(expected, "{list}", r.input);
            substitute(expected, "{word}", first ? items.front() : items.back());
            CHECK(r.output == expected);
            break;
        }
        case TaskKind::SentenceLonger: {
            REQUIRE(items.size() == 2);
            bool const first_longer = code_points(items[0]).size() > code_points(items[1]).size();
            auto expected = std::string(pack.sentence(SentenceKind::Longer));
            substitute(expected, "{a}", first_longer ? items[0] : items[1]);
            substitute(expected, "{b}", first_longer ? items[1] : items[0]);
            CHECK(r.output == expected);
            break;
        }
        case TaskKind::SentenceNumber: {
            auto const n = to_number(r.input);
            REQUIRE(n >= 1);
            REQUIRE(n <= 10);
            auto expected = std::string(pack.sentence(SentenceKind::NumberWord));
            substitute(expected, "{n}", r.input);
            substitute(expected, "{word}", std::string(pack.number_words[std::size_t(n - 1)]));
            CHECK(r.output == expected);
            break;
        }
    }
    // Sentence answers, and only they, end as sentences do (no word, number or list of the suite does).
    CHECK(answer_is_sentence(item.task) == (r.output.ends_with(".") || r.output.ends_with("。")));
    if (answer_is_word(item.task)) {
        bool const known = in_vocabulary(pack, r.output) ||
                           std::find(pack.number_words.begin(), pack.number_words.end(), r.output) !=
                               pack.number_words.end();
        CHECK(known);
        CHECK(letters_in_script(r.output, pack.script));
    }
    auto const& phrasings = pack.instructions[std::size_t(item.task)];
    CHECK(r.instruction == phrasings[item.phrasing]);
    CHECK(letters_in_script(r.instruction, pack.script));
    CHECK(r.lang == pack.code);
}

SyntheticSuiteConfig small_config(std::uint64_t seed = 7) {
    SyntheticSuiteConfig config;
    config.train_per_language = 300;
    config.test_per_language = 160;
    config.pretrain_sentences_per_language = 240;
    config.seed = seed;
    return config;
}

}  // namespace

TEST_CASE("every language pack is complete, in its own script, with distinct words") {
    CHECK(all_languages.size() >= 8);
    std::set<std::string_view> scripts;
    for (auto const* pack : all_languages) {
        INFO(pack->code);
        scripts.insert(pack->script);
        std::set<std::string> words, lengths;
        for (std::size_t i = 0; i < vocabulary_size; ++i) {
            std::string const w(pack->vocabulary_word(i));
            CHECK(!w.empty());
            CHECK(words.insert(w).second);
            CHECK(w.find(pack->list_separator) == std::string::npos);
            CHECK(w.find(',') == std::string::npos);
            CHECK(letters_in_script(w, pack->script));
            CHECK(utf8::first_invalid(w) == std::string_view::npos);
            lengths.insert(std::to_string(code_points(w).size()));
        }
        CHECK(lengths.size() >= 2);  // LongerWord needs words of two lengths
        for (auto w : pack->number_words) CHECK(letters_in_script(std::string(w), pack->script));
        for (auto task : all_tasks) {
            CHECK(pack->phrasing_count(task) >= 2);
            for (std::size_t p = 0; p < pack->phrasing_count(task); ++p)
                CHECK(!pack->instructions[std::size_t(task)][p].empty());
        }
        for (auto s : pack->sentences) {
            CHECK(!s.empty());
            std::string text;  // the template without its {placeholders}
            for (std::size_t i = 0; i < s.size(); ++i) {
                if (s[i] == '{') i = s.find('}', i);
                else text += s[i];
            }
            CHECK(letters_in_script(text, pack->script));
        }
    }
    CHECK(scripts.size() >= 3);  // Latin plus two others
    CHECK_THAT(error_of([] { find_language("xx"); }), Contains("no language \"xx\"") && Contains("en, es"));
}

TEST_CASE("the same seed gives the same suite, byte for byte; another seed another suite") {
    auto const a = build_synthetic_suite(small_config(7));
    auto const b = build_synthetic_suite(small_config(7));
    auto const c = build_synthetic_suite(small_config(8));
    auto const t = PromptTemplate::alpaca();
    REQUIRE(a.languages.size() == b.languages.size());
    for (std::size_t i = 0; i < a.languages.size(); ++i) {
        CHECK(alpaca_json_text(a.languages[i].train) == alpaca_json_text(b.languages[i].train));
        CHECK(test_file_text(a.languages[i].test, t) == test_file_text(b.languages[i].test, t));
        CHECK(pretrain_text(a.languages[i].pretrain) == pretrain_text(b.languages[i].pretrain));
        CHECK(test_file_text(a.languages[i].test, t) != test_file_text(c.languages[i].test, t));
    }
    CHECK(suite_description_text(a, t) == suite_description_text(b, t));

    auto const dir_a = fresh_dir("det_a"), dir_b = fresh_dir("det_b");
    write_suite(dir_a, a, t);
    write_suite(dir_b, b, t);
    std::size_t files = 0;
    for (auto const& entry : std::filesystem::recursive_directory_iterator(dir_a)) {
        if (!entry.is_regular_file()) continue;
        auto const relative = std::filesystem::relative(entry.path(), dir_a);
        CHECK(read_bytes(entry.path()) == read_bytes(dir_b / relative));
        ++files;
    }
    CHECK(files == 1 + 8 + 8 + 6);  // suite.json, test and pretrain per language, train per tuned language

    // Each language has streams of its own: a suite of English alone has the same English records.
    auto alone_config = small_config(7);
    alone_config.languages = {"en"};
    alone_config.zero_shot = {};
    auto const alone = build_synthetic_suite(alone_config);
    CHECK(alpaca_json_text(alone.languages[0].train) == alpaca_json_text(a.languages[0].train));
    CHECK(test_file_text(alone.languages[0].test, t) == test_file_text(a.languages[0].test, t));
}

TEST_CASE("every answer checks out when recomputed from its input, in the prompt's language") {
    auto const suite = build_synthetic_suite(small_config());
    for (auto const& lang : suite.languages) {
        std::vector<std::size_t> per_task(task_count, 0);
        for (auto const& item : lang.test) {
            check_answer(item, *lang.pack);
            ++per_task[std::size_t(item.task)];
        }
        for (auto const& item : lang.train) check_answer(item, *lang.pack);
        for (std::size_t t = 0; t < task_count; ++t) {
            INFO(lang.pack->code << " " << task_name(all_tasks[t]));
            CHECK(per_task[t] >= 10);  // every family is tested in every language
        }
    }
}

TEST_CASE("test and tuning splits share no prompt, and zero-shot languages are never tuned on") {
    auto config = small_config();
    config.train_per_language = 2000;  // enough to draw every number word prompt the test split leaves
    auto const suite = build_synthetic_suite(config);
    REQUIRE(suite.languages.size() == 8);
    for (auto const& lang : suite.languages) {
        INFO(lang.pack->code);
        std::set<std::string> test_keys, train_keys;
        for (auto const& item : lang.test) CHECK(test_keys.insert(prompt_key(item.record)).second);
        for (auto const& item : lang.train) {
            CHECK(test_keys.count(prompt_key(item.record)) == 0);
            train_keys.insert(prompt_key(item.record));
        }
        CHECK(lang.test.size() == config.test_per_language);
        bool const zero_shot = lang.pack->code == "bg" || lang.pack->code == "es";
        CHECK(lang.zero_shot == zero_shot);
        CHECK(lang.train.size() == (zero_shot ? 0 : config.train_per_language));
        if (!zero_shot) {
            // A task with few prompts keeps at least half of them for tuning.
            std::size_t number_word_prompts = 0;
            for (auto const& key : train_keys)
                for (std::size_t p = 0; p < lang.pack->phrasing_count(TaskKind::NumberWord); ++p)
                    number_word_prompts += key.starts_with(lang.pack->instructions[std::size_t(TaskKind::NumberWord)][p]);
            CHECK(number_word_prompts >= distinct_prompt_count(*lang.pack, TaskKind::NumberWord) / 2);
        }
        CHECK(lang.pretrain.size() == config.pretrain_sentences_per_language);
        // Every third pretraining line asks and answers a task, never one of the test prompts.
        std::set<std::string> const lines(lang.pretrain.begin(), lang.pretrain.end());
        std::size_t questions = 0;
        auto const qa = std::string(lang.pack->sentence(SentenceKind::QuestionAnswer));
        auto const opening = qa.substr(0, qa.find('{'));  // "Question: "
        for (auto const& line : lang.pretrain) questions += line.starts_with(opening) ? 1 : 0;
        CHECK(questions == config.pretrain_sentences_per_language / 3);
        for (auto const& item : lang.test) {
            auto line = qa;
            substitute(line, "{question}", item.record.instruction);
            substitute(line, "{input}", item.record.input);
            substitute(line, "{answer}", item.record.output);
            CHECK(lines.count(line) == 0);
        }
    }
    auto const dir = fresh_dir("zero_shot");
    write_suite(dir, suite, PromptTemplate::alpaca());
    CHECK(!std::filesystem::exists(dir / "train" / "bg.json"));
    CHECK(!std::filesystem::exists(dir / "train" / "es.json"));
    CHECK(std::filesystem::exists(dir / "test" / "test_bg.jsonl"));
    CHECK(std::filesystem::exists(dir / "pretrain" / "bg.txt"));
    auto const description = nlohmann::json::parse(read_bytes(dir / "suite.json"));
    CHECK(description["zero_shot"] == nlohmann::json({"bg", "es"}));
    CHECK(description["languages"][6]["code"] == "bg");
    CHECK(description["languages"][6]["zero_shot"] == true);
    CHECK(description["languages"][6]["train_file"].is_null());
    CHECK(description["languages"][7]["script"] == "Han");
    CHECK(description["prompt_template"] == "built-in alpaca");
}

TEST_CASE("all text is UTF-8, pretraining text is plain sentences, and the files read back") {
    auto const suite = build_synthetic_suite(small_config());
    auto const dir = fresh_dir("files");
    auto const t = PromptTemplate::alpaca();
    write_suite(dir, suite, t);
    for (auto const& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        INFO(entry.path());
        CHECK(utf8::first_invalid(read_bytes(entry.path())) == std::string_view::npos);
    }
    for (auto const& lang : suite.languages) {
        INFO(lang.pack->code);
        for (auto const& s : lang.pretrain) {
            CHECK(!s.empty());
            CHECK(s.find('{') == std::string::npos);
            CHECK(s.find('\n') == std::string::npos);
            CHECK(s.find("###") == std::string::npos);
            CHECK(letters_in_script(s, lang.pack->script));
        }
        std::set<std::string> distinct(lang.pretrain.begin(), lang.pretrain.end());
        CHECK(distinct.size() > lang.pretrain.size() / 2);

        auto const code = std::string(lang.pack->code);
        auto const test_path = dir / "test" / ("test_" + code + ".jsonl");
        auto const entries = read_test_file(test_path);
        REQUIRE(entries.size() == lang.test.size());
        for (std::size_t i = 0; i < entries.size(); ++i) {
            auto const& r = lang.test[i].record;
            CHECK(entries[i].id == r.id);
            CHECK(entries[i].lang == code);
            CHECK(entries[i].task == task_name(lang.test[i].task));
            CHECK(entries[i].answer == r.output);
            CHECK(entries[i].input == r.input);
        }
        // The evaluation's test-set reader takes the same file: prompt = instruction, input alongside.
        DataReport report;
        auto const set = eval::read_test_set(test_path, BadRecordPolicy::Fail, report);
        REQUIRE(set.prompts.size() == lang.test.size());
        CHECK(set.lang == code);
        CHECK(set.prompts[3].prompt == lang.test[3].record.instruction);
        CHECK(set.prompts[3].input == lang.test[3].record.input);

        // Scoring by id: the answers themselves, one left out, one wrong.
        std::map<std::string, std::string> responses;
        for (auto const& e : entries) responses[e.id] = e.answer;
        responses.erase(entries[0].id);
        responses[entries[1].id] = entries[1].answer + "1";
        auto const score = score_test_entries(entries, responses);
        CHECK(score.missing == 1);
        CHECK(score.tally.of_language(code).total == entries.size());
        CHECK(score.tally.of_language(code).correct == entries.size() - 2);

        if (lang.zero_shot) continue;
        ReadOptions options;
        DataReport train_report;
        auto const train = read_alpaca(dir / "train" / (code + ".json"), options, train_report);
        REQUIRE(train.size() == lang.train.size());
        CHECK(train[5].lang == code);
        CHECK(train[5].instruction == lang.train[5].record.instruction);
        CHECK(train[5].input == lang.train[5].record.input);
        CHECK(train[5].output == lang.train[5].record.output);
        CHECK(train[5].id == lang.train[5].record.id);
    }
    auto const line = read_bytes(dir / "test" / "test_en.jsonl").substr(0, 400);
    CHECK_THAT(line, Contains("\"alpaca_prompt\":\"Below is an instruction that describes a task, paired with an input"));
}

TEST_CASE("bad configs and bad test files are errors that say what is wrong") {
    auto config = small_config();
    config.languages = {"en", "xx"};
    CHECK_THAT(error_of([&] { build_synthetic_suite(config); }), Contains("no language \"xx\""));
    config.languages = {"en", "ru"};
    config.zero_shot = {"bg"};
    CHECK_THAT(error_of([&] { build_synthetic_suite(config); }),
               Contains("zero-shot language \"bg\" is not one of the suite's languages"));
    config.languages = {"en", "en"};
    config.zero_shot = {};
    CHECK_THAT(error_of([&] { build_synthetic_suite(config); }), Contains("\"en\" is listed twice"));

    auto const dir = fresh_dir("bad_test_file");
    std::filesystem::create_directories(dir);
    auto const path = dir / "test_en.jsonl";
    io::write_file_atomically(path, "{\"id\":\"a\",\"lang\":\"en\",\"task\":\"add\",\"instruction\":\"Add.\",\"input\":\"1, 2\"}\n");
    CHECK_THAT(error_of([&] { read_test_file(path); }), Contains("test_en.jsonl:1: no \"answer\""));
    io::write_file_atomically(path, "\n{\"id\":\"a\",\"lang\":\"en\",\"task\":\"add\",\"instruction\":\"Add.\",\"input\":\"1\","
                                    "\"answer\":3}\n");
    CHECK_THAT(error_of([&] { read_test_file(path); }), Contains("test_en.jsonl:2: \"answer\" is a JSON number"));
    io::write_file_atomically(path, "[1]\n");
    CHECK_THAT(error_of([&] { read_test_file(path); }), Contains("test_en.jsonl:1: a test line is a JSON object"));
    io::write_file_atomically(path, "{\"id\":\"\xff\"}\n");
    CHECK_THAT(error_of([&] { read_test_file(path); }), Contains("test_en.jsonl:1: invalid UTF-8 at byte offset 7"));
}

TEST_CASE("exact match normalises space, a final period, case and digits, and nothing more") {
    CHECK(exact_match("  7. ", "7"));
    CHECK(exact_match("Семь", "семь"));
    CHECK(exact_match("СЕМЬ.", "семь"));
    CHECK(exact_match("红色。", "红色"));
    CHECK(exact_match("ÉLÉPHANT", "éléphant"));
    CHECK(exact_match("Päärynä", "PÄÄRYNÄ"));
    CHECK(exact_match("Hund", "hund"));
    CHECK(exact_match("Ёж", "еж"));
    CHECK(exact_match("ΣΟΦΊΑ", "σοφία"));
    CHECK(exact_match("Čeřešně", "čeřešně"));
    CHECK(exact_match("007", "7"));
    CHECK(exact_match("８", "8"));
    CHECK(exact_match("2,9,14", "2, 9, 14"));
    CHECK(exact_match("52、99", "52, 99"));
    CHECK(exact_match("lemon,\u00a0 bird\n", "lemon, bird"));
    CHECK(exact_match("\u3000七\u3000", "七"));

    CHECK_FALSE(exact_match("7", "8"));
    CHECK_FALSE(exact_match("seven", "7"));
    CHECK_FALSE(exact_match("7 apples", "7"));
    CHECK_FALSE(exact_match("2, 9", "2, 9, 14"));
    CHECK_FALSE(exact_match("9, 2, 14", "2, 9, 14"));
    CHECK_FALSE(exact_match("reds", "red"));
    CHECK_FALSE(exact_match("7..", "7"));
    CHECK_FALSE(exact_match("", "7"));
    CHECK_FALSE(exact_match("\xff" "7", "7"));
    CHECK(normalize_answer("  Red \t  Apple. ") == "red apple");
    CHECK(normalize_answer("\xff") == "\xEF\xBF\xBD");

    ExactMatchTally tally;
    CHECK(tally.add("ru", "number_word", "Семь", "семь"));
    CHECK_FALSE(tally.add("ru", "add", "12", "13"));
    CHECK(tally.add("zh", "first_word", "红色。", "红色"));
    tally.count("ru", "add", false);
    REQUIRE(tally.per_language().size() == 2);
    CHECK(tally.per_language()[0].group == "ru");
    CHECK(tally.of_language("ru").correct == 1);
    CHECK(tally.of_language("ru").total == 3);
    CHECK(tally.of_language("ru").accuracy() == Approx(1.0 / 3.0));
    CHECK(tally.of_language("zh").accuracy() == 1.0);
    CHECK(tally.of_language("fr").total == 0);
    REQUIRE(tally.per_task().size() == 3);
    CHECK(tally.per_task()[1].group == "ru/add");
    CHECK(tally.per_task()[1].total == 2);

    // The suite's own answers match themselves after any of the normalisations a model's output may need.
    auto const suite = build_synthetic_suite(small_config());
    for (auto const& lang : suite.languages)
        for (auto const& item : lang.test) {
            // A sentence answer has its period already (a second is not dropped); a word or number may gain one.
            auto const period = answer_is_sentence(item.task) ? "" : ".";
            CHECK(exact_match(" " + item.record.output + period + "\n", item.record.output));
            if (item.task == TaskKind::Count) CHECK_FALSE(exact_match(item.record.output + "0", item.record.output));
        }
}

TEST_CASE("CLD2 identifies the sentence answers as their language, so fidelity is measurable on them") {
    auto config = small_config();
    config.zero_shot = {};
    config.train_per_language = 1300;  // 100 of each task
    auto const suite = build_synthetic_suite(config);
    for (auto const& lang : suite.languages) {
        std::size_t sentences = 0, identified = 0;
        for (auto const& item : lang.train) {
            if (!answer_is_sentence(item.task)) continue;
            ++sentences;
            identified += polyalpaca::eval::identify_language(item.record.output).code == lang.pack->code ? 1 : 0;
        }
        INFO(lang.pack->code << ": " << identified << " of " << sentences);
        CHECK(sentences >= 400);
        CHECK(identified >= sentences * 9 / 10);  // measured: 93% (es) to 100% (en, de)
    }
}
