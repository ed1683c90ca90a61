/// @file eval/evaluate_options.hpp
/// @brief The command line of the evaluator programs (Boost.Program_options): runs, test sets, tokenizer, decoding,
///        validation data, judge scores, output directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include <boost/program_options.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/value_checks.hpp"

namespace polyalpaca::eval {

/// What a generated evaluator bakes in: its name and the model it was compiled for.
struct EvaluateDefaults {
    std::string name;   ///< program name for --help and messages
    std::string model;  ///< the model's name in the report, e.g. "bloom-560m"
};

struct EvaluateCommandLine {
    std::filesystem::path runs, tests, tokenizer, base_model, output, judge_scores, val;
    std::string decoding = "paper", bad_records = "fail";
    int max_new_tokens = 0;  ///< 0: the preset's
    std::size_t batch = 8;   ///< prompts per generate() call
    bool reuse_responses = false, quiet = false;
};

/// Every number of the command line in its range (core/value_checks.hpp); a negative --batch, which Boost wraps
/// around, is shown as given.
inline void check_evaluate_numbers(EvaluateCommandLine const& c) {
    require_count_in("--max-new-tokens", std::int64_t(c.max_new_tokens), 0, 1 << 20);
    require_count_in("--batch", std::uint64_t(c.batch), 1, 1 << 16);
}

/// Parses argv; returns nothing after printing --help.
inline std::optional<EvaluateCommandLine> parse_evaluate_command_line(int argc, char** argv,
                                                                      EvaluateDefaults const& d) {
    namespace po = boost::program_options;
    EvaluateCommandLine c;
    po::options_description desc(d.name + ": evaluates trained " + d.model +
                                 " runs (LoRA adapters and full checkpoints) on test sets: generates responses, "
                                 "measures language fidelity (CLD2) and validation loss, and writes the report.\n"
                                 "Options");
    auto add = desc.add_options();
    add("help,h", "print this help");
    add("runs", po::value(&c.runs)->required(),
        "a run directory (run_summary.json, adapter/ or model/) or a "
        "directory of them");
    add("tests", po::value(&c.tests)->required(),
        "a directory of test_<lang>.jsonl files ({\"id\", \"prompt\"} per "
        "line), or one such file");
    add("tokenizer", po::value(&c.tokenizer)->required(), "tokenizer.json or SentencePiece tokenizer.model");
    add("base-model", po::value(&c.base_model),
        "HF directory of the base model under the LoRA adapters (default: "
        "the run's --model-dir as run_config.json records it; random weights from the run's seed when it had none)");
    add("decoding", po::value(&c.decoding)->default_value(c.decoding),
        "paper (paper-lora for LoRA runs, paper-full "
        "for full-parameter runs), paper-lora, paper-full, greedy or sample");
    add("max-new-tokens", po::value(&c.max_new_tokens)->default_value(0), "new tokens per response (0: the preset's)");
    add("batch", po::value(&c.batch)->default_value(c.batch), "prompts decoded together");
    add("val", po::value(&c.val),
        "a directory of Alpaca files per language (val_<lang>.jsonl, <lang>.jsonl or "
        "<lang>.json) for validation loss in every language; without it, the trainer's held-out loss of the "
        "languages each run trained on");
    add("judge-scores", po::value(&c.judge_scores),
        "JSONL of judge scores {\"run\", \"language\", \"id\", \"score\"}"
        " to join with the responses");
    add("output", po::value(&c.output)->required(), "where responses/, report.md, results.csv and plots/ go");
    add("bad-records", po::value(&c.bad_records)->default_value(c.bad_records),
        "fail (stop at the first bad test line, naming it) or skip (skip it and count it in the report)");
    add("reuse-responses", po::bool_switch(&c.reuse_responses),
        "read responses/<run>.jsonl from --output where it "
        "exists instead of generating again (e.g. to add judge scores to the report)");
    add("quiet", po::bool_switch(&c.quiet), "no progress line");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return std::nullopt;
    }
    po::notify(vm);
    require(c.bad_records == "fail" || c.bad_records == "skip", "--bad-records must be fail or skip, got '",
            c.bad_records, "'");
    check_evaluate_numbers(c);
    return c;
}

}  // namespace polyalpaca::eval
