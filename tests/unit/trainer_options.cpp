/// @file tests/unit/trainer_options.cpp
/// @brief The trainers' and the evaluator's command lines (train/program_options.hpp, eval/evaluate_options.hpp):
///        every number out of its range is refused while the options are parsed, before any work, in one sentence
///        naming the option, the value and the range (core/value_checks.hpp).
#include <polyalpaca/eval/evaluate_options.hpp>
#include <polyalpaca/train/program_options.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace pa = polyalpaca;
using Catch::Matchers::Contains;

namespace {

std::optional<pa::TrainerCommandLine> parse(std::vector<std::string> extra) {
    std::vector<std::string> args{"trainer", "--data", "en=en.jsonl", "--output-dir", "out"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return pa::parse_trainer_command_line(int(argv.size()), argv.data(), {.name = "trainer", .adapter = true});
}

std::optional<pa::eval::EvaluateCommandLine> parse_evaluate(std::vector<std::string> extra) {
    std::vector<std::string> args{"evaluate", "--runs", "r", "--tests", "t", "--tokenizer", "k.json", "--output", "o"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return pa::eval::parse_evaluate_command_line(int(argv.size()), argv.data(), {.name = "evaluate", .model = "m"});
}

}  // namespace

TEST_CASE("a trainer's numbers are checked while its command line is read", "[unit][trainer_options]") {
    auto const fine = parse({"--budget-records", "104", "--lr", "1e-3", "--cutoff", "256"});
    REQUIRE(fine.has_value());
    CHECK(fine->budget_records == 104);
    CHECK(fine->cutoff == 256);

    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    Case const cases[] = {
        {{"--budget-records", "-1"}, "--budget-records must be a whole number from 0 to 1125899906842624, got -1"},
        {{"--budget-flops", "nan"}, "--budget-flops must be a number from 0 to 1e+30, got nan"},
        {{"--cutoff", "-5"}, "--cutoff must be a whole number from 2 to 16777216, got -5"},
        {{"--micro-batch", "-1"}, "--micro-batch must be a whole number from 1 to 1048576, got -1"},
        {{"--global-batch", "0"}, "--global-batch must be a whole number from 1"},
        {{"--max-grad-norm", "nan"}, "--max-grad-norm must be a number from 0 to 1e+30, got nan"},
        {{"--lora-dropout", "-1"}, "--lora-dropout must be a number from 0 to below 1, got -1"},
        {{"--lora-dropout", "1"}, "--lora-dropout must be a number from 0 to below 1, got 1"},
        {{"--eval-every", "-5"}, "--eval-every must be a whole number from 0 to 1099511627776, got -5"},
        {{"--lr", "inf"}, "--lr must be a number from 0 to 10, got inf"},
        {{"--warmup-ratio", "1.5"}, "--warmup-ratio must be a number from 0 to 1, got 1.5"},
        {{"--epochs", "0"}, "--epochs 0 trains nothing"},
    };
    for (auto const& c : cases) {
        INFO(c.args[0] << " " << c.args[1]);
        CHECK_THROWS_WITH(parse(c.args), Contains(c.message));
    }
}

TEST_CASE("the evaluator's numbers are checked while its command line is read", "[unit][trainer_options]") {
    auto const fine = parse_evaluate({"--batch", "4", "--max-new-tokens", "16"});
    REQUIRE(fine.has_value());
    CHECK(fine->batch == 4);
    CHECK_THROWS_WITH(parse_evaluate({"--batch", "-1"}), Contains("--batch must be a whole number from 1 to 65536, got -1"));
    CHECK_THROWS_WITH(parse_evaluate({"--batch", "0"}), Contains("--batch must be a whole number from 1"));
    CHECK_THROWS_WITH(parse_evaluate({"--max-new-tokens", "-5"}),
                      Contains("--max-new-tokens must be a whole number from 0 to 1048576, got -5"));
}
