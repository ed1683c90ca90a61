// The study file: the paper's study file (docs/paper_study.json) and the embedded study parse and plan as documented;
// bad study files are errors naming the file and key; the byte tokenizer round-trips every script.
#include <catch2/catch.hpp>

#include <polyalpaca/study/byte_tokenizer.hpp>
#include <polyalpaca/study/embedded_default.hpp>
#include <polyalpaca/study/planner.hpp>
#include <polyalpaca/study/study_tokenizer.hpp>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;
namespace ps = polyalpaca::study;

namespace {

std::string error_of(std::string const& text) {
    try {
        ps::parse_study(nlohmann::json::parse(text), "s.json", ".");
    } catch (pa::Error const& e) {
        return e.what();
    }
    return "";
}

std::string const minimal = R"({"base_model": {"preset": "bloom-study"}, "methods": ["full"], "languages": ["en"],
    "data": {"en": "en.json"}, "test_sets": {"en": "test_en.jsonl"}, "strategies": ["monolingual"]})";

std::string with(std::string const& key_value) {
    auto j = nlohmann::json::parse(minimal);
    j.update(nlohmann::json::parse("{" + key_value + "}"));
    return j.dump();
}

}  // namespace

TEST_CASE("the paper's study file parses and plans its whole matrix", "[study]") {
    auto const path = std::filesystem::path(POLYALPACA_SOURCE_DIR) / "docs" / "paper_study.json";
    auto const s = ps::read_study_file(path);
    REQUIRE(s.base_models.size() == 5);
    CHECK(s.base_models.front().preset == "bloom-560m");
    CHECK(s.base_models.back().preset == "bloom-7b1");
    CHECK(s.methods == std::vector<std::string>{"lora", "full"});
    CHECK(s.languages.size() == 9);
    CHECK(s.zero_shot == std::vector<std::string>{"hi", "no"});
    CHECK(s.test_sets.size() == 11);
    auto const& lora = s.hyperparameters.at("lora");
    auto const& full = s.hyperparameters.at("full");
    CHECK(lora.lr == 3e-4);
    CHECK(lora.epochs == 5);
    CHECK(lora.warmup_steps == 100);
    CHECK(lora.group_by_length);
    CHECK(lora.train_on_inputs);
    CHECK(lora.lora_dropout == 0.05);
    CHECK(full.lr == 2e-5);
    CHECK(full.epochs == 3);
    CHECK(full.schedule == "cosine");
    CHECK(full.warmup_ratio == 0.03);
    CHECK_FALSE(full.train_on_inputs);
    CHECK(full.global_batch == 128);
    CHECK(s.decoding.preset == "paper");
    REQUIRE(s.budgets.size() == 1);
    CHECK(s.budgets[0].tag() == "epochs-method");

    auto const models = ps::split_by_base_model(s);
    REQUIRE(models.size() == 5);
    CHECK(models[2].preset == "bloom-1b7");
    CHECK(models[2].output == std::filesystem::path("paper-study") / "bloom-1b7");
    // Per model: 2 methods x (9 monolingual + multilingual + downsampled).
    auto const runs = ps::plan_runs(models[0]);
    REQUIRE(runs.size() == 22);
    CHECK(runs[0].name == "lora-monolingual-en-epochs-method");
    CHECK(runs[0].languages == std::vector<std::string>{"en"});
    CHECK(runs[9].name == "lora-multilingual-epochs-method");
    CHECK(runs[9].languages.size() == 9);
    CHECK(runs[10].label == "downsampled");
    CHECK(runs[11].method == "full");
    CHECK(runs[0].dir == std::filesystem::path("paper-study") / "bloom-560m" / "runs" / runs[0].name);
}

TEST_CASE("the embedded study and its quick form", "[study]") {
    auto const s = ps::embedded_study(false);
    CHECK(s.preset == "bloom-study");
    CHECK(s.suite.has_value());
    CHECK(s.pretrain.steps > 0);
    auto const langs = s.test_languages();
    CHECK(langs.size() >= 6);
    CHECK(std::find(langs.begin(), langs.end(), "ru") != langs.end());
    CHECK(std::find(langs.begin(), langs.end(), "zh") != langs.end());
    auto const runs = ps::plan_runs(s);
    CHECK(s.methods == std::vector<std::string>{"lora", "full"});  // both of the paper's methods
    CHECK(runs.size() == s.methods.size() * (s.languages.size() + s.strategies.size() - 1));
    // Its runs train one thread each, as many at once as there are cores: figures that do not depend on the cores.
    CHECK(s.threads_per_run == 1);
    CHECK(s.jobs == 0);
    auto const quick = ps::embedded_study(true);
    CHECK(ps::plan_runs(quick).size() == 3);
}

TEST_CASE("strategies, budgets and their run names", "[study]") {
    auto const s = ps::parse_study(nlohmann::json::parse(with(
        R"("languages": ["en", "fr"], "data": {"en": "a", "fr": "b"}, "test_sets": {"en": "c", "fr": "d"},
           "strategies": ["temperature:2.0", "weighted:en=2,fr=1"], "budgets": [{"records": 2000}, {"flops": 1.5e12}])")),
                                   "s.json", "/data");
    auto const runs = ps::plan_runs(s);
    REQUIRE(runs.size() == 4);
    CHECK(runs[0].name == "full-temperature2-records-2000");
    CHECK(runs[0].label == "temperature 2");
    CHECK(runs[0].strategy == "temperature:2");  // the one spelling, whatever the file wrote
    CHECK(runs[1].name == "full-weighted-en2-fr1-records-2000");
    CHECK(runs[3].name == "full-weighted-en2-fr1-flops-1.5e+12");
    CHECK(runs[3].budget.budget().has_value());
    CHECK(s.data.at("en") == std::filesystem::path("/data/a"));
    CHECK(runs[1].languages == std::vector<std::string>{"en", "fr"});
    CHECK(runs[1].mixing.weights == std::vector<std::pair<std::string, double>>{{"en", 2}, {"fr", 1}});
}

TEST_CASE("whole-number keys refuse fractions and values out of their range instead of wrapping", "[study]") {
    for (char const* bad : {"6.67e103", "1e30", "-5", "3.7", "18446744073709551616"}) {
        INFO(bad);
        CHECK_THAT(error_of(with(std::string(R"("hyperparameters": {"full": {"cutoff": )") + bad + "}}")),
                   Catch::Contains("s.json.hyperparameters.full.cutoff must be a whole number from 2 to"));
    }
    CHECK_THAT(error_of(with(R"("seed": -1)")), Catch::Contains("s.json.seed must be a whole number from 0 to"));
    auto const s = ps::parse_study(nlohmann::json::parse(with(R"("hyperparameters": {"full": {"cutoff": 96}})")),
                                   "s.json", ".");
    CHECK(s.hyperparameters.at("full").cutoff == 96);
}

TEST_CASE("the study's numbers are checked against the trainers' ranges before any work", "[study]") {
    std::pair<char const*, char const*> const cases[] = {
        {R"("hyperparameters": {"lora": {"lora_dropout": 1}})", "s.json.hyperparameters.lora.lora_dropout: must be below 1"},
        {R"("hyperparameters": {"lora": {"lora_dropout": -0.5}})",
         "s.json.hyperparameters.lora.lora_dropout must be a number from 0 to 1, got -0.5"},
        {R"("hyperparameters": {"full": {"warmup_ratio": 2}})", "s.json.hyperparameters.full.warmup_ratio must be a number"},
        {R"("hyperparameters": {"full": {"max_grad_norm": -1}})", "s.json.hyperparameters.full.max_grad_norm must be"},
        {R"("hyperparameters": {"full": {"cutoff": 1}})", "s.json.hyperparameters.full.cutoff must be a whole number from 2"},
        {R"("hyperparameters": {"full": {"micro_batch": 0}})", "s.json.hyperparameters.full.micro_batch must be a whole"},
        {R"("decoding": {"max_new_tokens": -5})", "s.json.decoding.max_new_tokens must be a whole number from 0 to"},
        {R"("decoding": {"batch": 0})", "s.json.decoding.batch must be a whole number from 1 to 65536, got 0"},
        {R"("jobs": [[[[1]]]])", "s.json.jobs must be a whole number from 0 to 1024, got a JSON array"},
    };
    for (auto const& [bad, message] : cases) {
        INFO(bad);
        CHECK_THAT(error_of(with(bad)), Catch::Contains(message));
    }
    auto const suite = nlohmann::json::parse(with(R"("suite": {}, "pretrain": {"lr": 0})"));
    CHECK_THROWS_WITH(ps::parse_study(suite, "s.json", "."), Catch::Contains("s.json.pretrain.lr: must be positive"));
}

TEST_CASE("a study file's long names are quoted as excerpts", "[study]") {
    std::string const long_name(100000, 'x');
    for (auto const& bad : {R"("strategies": [")" + long_name + R"("])", R"(")" + long_name + R"(": 1)",
                            R"("methods": [")" + long_name + R"("])", R"("device": ")" + long_name + R"(")"}) {
        auto const message = error_of(with(bad));
        INFO(message.substr(0, 200));
        CHECK_THAT(message, Catch::Contains("xxx..."));
        CHECK(message.size() < 300);
    }
}

TEST_CASE("a study file that is a directory, and a missing checkpoint beside a suite, are named", "[study]") {
    auto const dir = std::filesystem::temp_directory_path() / "polyalpaca_study_dir.json";
    std::filesystem::create_directories(dir);
    CHECK_THROWS_WITH(ps::read_study_file(dir), Catch::Contains("polyalpaca_study_dir.json: cannot open the study file: "
                                                                "it is a directory"));
    std::filesystem::remove(dir);
    auto const s = ps::parse_study(
        nlohmann::json::parse(with(R"("suite": {}, "base_model": {"preset": "bloom-study", "checkpoint": "/no/ckpt"})")),
        "s.json", ".");
    auto const missing = ps::missing_files(s);
    REQUIRE(missing.size() == 1);
    CHECK(missing[0] == "the study: base_model.checkpoint: /no/ckpt does not exist");
}

TEST_CASE("a path the system cannot look at is listed as such, not thrown", "[study]") {
    auto s = ps::parse_study(nlohmann::json::parse(minimal), "s.json", ".");
    s.data["en"] = std::string(5000, 'a');  // longer than any file name may be
    auto const missing = ps::missing_files(s);
    REQUIRE(missing.size() >= 1);
    CHECK_THAT(missing[0], Catch::Contains("data.en: aaaa") && Catch::Contains("... cannot be looked at: "));
}

TEST_CASE("a bad study file is an error naming the file and the key", "[study]") {
    CHECK(error_of(minimal).empty());
    CHECK_THAT(error_of(with(R"("methods": ["qlora"])")), Catch::Contains("s.json.methods: \"qlora\" is none of"));
    CHECK_THAT(error_of(with(R"("strategies": ["bilingual"])")), Catch::Contains("s.json.strategies: unknown strategy \"bilingual\""));
    CHECK_THAT(error_of(with(R"("strategies": ["temperature:hot"])")),
               Catch::Contains("s.json.strategies: \"temperature:hot\": the temperature \"hot\" is not a number"));
    CHECK_THAT(error_of(with(R"("strategies": ["temperature:0.5"])")), Catch::Contains("must be at least 1"));
    CHECK_THAT(error_of(with(R"("strategies": ["weighted:en=1,de=1"])")),
               Catch::Contains("s.json.strategies: \"weighted:en=1,de=1\" weights \"de\", which is not a tuned language"));
    CHECK_THAT(error_of(with(R"("budgets": [{"hours": 3}])")), Catch::Contains("s.json.budgets[0]: unknown budget unit \"hours\""));
    CHECK_THAT(error_of(with(R"("budgets": [{"records": -1}])")), Catch::Contains("must be a positive number"));
    CHECK_THAT(error_of(with(R"("lanugages": ["en"])")), Catch::Contains("s.json.lanugages: unknown key"));
    CHECK_THAT(error_of(with(R"("test_sets": {})")), Catch::Contains("s.json.test_sets: no file for language \"en\""));
    CHECK_THAT(error_of(with(R"("zero_shot": ["en"])")), Catch::Contains("\"en\" is listed twice"));
    CHECK_THAT(error_of(with(R"("hyperparameters": {"full": {"lr": "fast"}})")),
               Catch::Contains("s.json.hyperparameters.full.lr: has the wrong type"));
    CHECK_THAT(error_of(with(R"("hyperparameters": {"full": {"global_batch": 10, "micro_batch": 4}})")),
               Catch::Contains("must be a multiple of micro_batch"));
    CHECK_THAT(error_of(with(R"("decoding": {"preset": "nucleus"})")), Catch::Contains("s.json.decoding.preset"));
    CHECK_THAT(error_of(with(R"("base_model": {"checkpoint": "x"})")), Catch::Contains("s.json.base_model.preset: missing"));
    CHECK_THAT(error_of(with(R"("pretrain": {"steps": 10})")), Catch::Contains("needs the synthetic \"suite\""));
    CHECK_THAT(error_of(with(R"("jobs": 1.5)")), Catch::Contains("s.json.jobs must be a whole number from 0 to 1024"));
    CHECK_THAT(error_of(with(R"("jobs": -2)")), Catch::Contains("s.json.jobs must be a whole number"));
    CHECK_THAT(error_of(with(R"("jobs": 1e30)")), Catch::Contains("s.json.jobs must be a whole number"));
    CHECK_THAT(error_of(with(R"("threads_per_run": "all")")),
               Catch::Contains("s.json.threads_per_run must be a whole number from 0 to 4096, got \"all\""));
    CHECK_THROWS_WITH(ps::read_study_file("no/such/study.json"), Catch::Contains("no/such/study.json: cannot open"));
}

TEST_CASE("jobs and threads per run are read from the study file", "[study][jobs]") {
    auto const s = ps::parse_study(nlohmann::json::parse(with(R"("jobs": 3, "threads_per_run": 2)")), "s.json", ".");
    CHECK(s.jobs == 3);
    CHECK(s.threads_per_run == 2);
    auto const defaults = ps::parse_study(nlohmann::json::parse(minimal), "s.json", ".");
    CHECK(defaults.jobs == 0);
    CHECK(defaults.threads_per_run == 0);
}

TEST_CASE("the byte tokenizer encodes every script as its UTF-8 bytes and back", "[study]") {
    auto const t = ps::byte_tokenizer();
    CHECK(t.vocab_size() == ps::byte_vocab_size);
    CHECK(*t.eos_id() == ps::byte_eos_id);
    for (std::string text : {"Add 7 and 12.", "Напиши число словом: семь", "这两个词中哪个更长？樱桃、梨", "Äpfel\n\t ä"}) {
        auto const ids = t.encode(text, true);
        REQUIRE(ids.size() == text.size());
        for (std::size_t i = 0; i < text.size(); ++i) CHECK(ids[i] == ps::byte_offset + int((unsigned char)text[i]));
        CHECK(t.decode(ids, true) == text);
    }
    auto const compact = pa::PromptTemplate::from_json_text(ps::compact_template_json(), "compact");
    CHECK(compact.response_split() == "### Response:");
}

TEST_CASE("a byte-level BPE learns the most frequent pairs first and stops below the minimum frequency", "[study]") {
    // Words (letters, spaces and other runs apart): "ab" 3 times, "abc" twice, " " 4 times. (a, b) is seen 5 times,
    // then (ab, c) twice; nothing else twice.
    std::vector<std::string> const texts{"ab ab ab", "abc abc"};
    auto const split = ps::suite_bpe_pre_tokenizer();
    auto const merges = pa::tokenizer::train_byte_level_bpe(texts, split, {.new_tokens = 10});
    REQUIRE(merges.size() == 2);
    CHECK(merges[0] == std::pair<std::string, std::string>{"a", "b"});
    CHECK(merges[1] == std::pair<std::string, std::string>{"ab", "c"});
    CHECK(pa::tokenizer::train_byte_level_bpe(texts, split, {.new_tokens = 1}).size() == 1);
    auto const t = pa::Tokenizer::from_hf_json_text(ps::byte_level_bpe_json(merges), "bpe");
    CHECK(t.vocab_size() == ps::byte_vocab_size + 2);
    int const ab = ps::byte_vocab_size, abc = ps::byte_vocab_size + 1, space = ps::byte_offset + ' ';
    // A word is the same ids after a space or not.
    CHECK(t.encode("abc ab, ab", false) == std::vector<std::int32_t>{abc, space, ab, ps::byte_offset + ',', space, ab});
}

TEST_CASE("the embedded study's BPE, learned from the suite, round-trips every language and shortens it", "[study]") {
    auto const s = ps::embedded_study(/*quick*/ true);
    REQUIRE(s.suite);
    auto const compact = pa::PromptTemplate::from_json_text(ps::compact_template_json(), "compact");
    auto const data = ps::load_study_data(s, compact, {.write_suite = false});
    auto const made = ps::study_tokenizer(s, data, compact);
    auto const again = ps::study_tokenizer(s, data, compact);
    CHECK(made.made_here == again.made_here);  // deterministic
    CHECK(made.tokenizer.vocab_size() <= std::int32_t(s.suite->bpe_vocab));
    CHECK(*made.tokenizer.eos_id() == ps::byte_eos_id);
    std::size_t bytes = 0, tokens = 0;
    for (auto const& set : data.test_sets)
        for (auto const& p : set.prompts) {
            auto const text = compact.generate_prompt(p.prompt, p.input);
            auto const ids = made.tokenizer.encode(text, false);
            CHECK(made.tokenizer.decode(ids) == text);
            bytes += text.size(), tokens += ids.size();
        }
    CHECK(tokens * 3 < bytes);  // the prompts' words are whole tokens
}
