/// @file train/program_options.hpp
/// @brief The command line of every generated trainer (Boost.Program_options): what it accepts and its defaults.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/value_checks.hpp"
#include "polyalpaca/data/strategy.hpp"

namespace polyalpaca {

/// Compile-time choices a generated trainer bakes in as defaults (the command line can still override strategy).
struct TrainerDefaults {
    std::string name;                      ///< program name for --help
    std::string strategy = "multilingual"; ///< a Strategy's spelling (data/strategy.hpp)
    bool adapter = true;                   ///< an adapter (LoRA, DoRA, IA3) or full-parameter: the paper's per-method defaults below
    std::string adapter_name = "LoRA";     ///< in --help
};

struct TrainerCommandLine {
    std::filesystem::path model_dir, tokenizer, output_dir;
    std::vector<std::string> data, languages;
    std::string strategy, sample_ids = "shared", schedule, prompt_template = "alpaca", eos = "alpaca-lora";
    std::string bad_records = "fail", save_dtype = "f32", attention = "auto";
    std::string gemm_math;  ///< "" keeps the backend's own (bf16 on CUDA, fp32 on the CPU)
    double epochs = 0, lr = 0, warmup_ratio = 0, weight_decay = 0, max_grad_norm = 1.0;
    double lora_dropout = 0.05, budget_flops = 0;
    std::int64_t budget_records = 0, budget_tokens = 0;
    long warmup_steps = 0, eval_every = 200, profile_step = 0;
    std::size_t micro_batch = 4, global_batch = 128, cutoff = 512, val_size = 1000;
    std::uint64_t val_seed = 42, seed = 42;
    int keep_last = 2;
    bool group_by_length = false, train_on_inputs = false, no_resume = false, quiet = false, merge = false;
    bool allow_changed_options = false;
    bool zero1 = false;
};

/// Every number of a trainer's command line in its range, before any work (core/value_checks.hpp).
inline void check_trainer_numbers(TrainerCommandLine const& c) {
    using U = std::uint64_t;
    using I = std::int64_t;
    constexpr double huge = 1e30;
    require_count_in("--micro-batch", U(c.micro_batch), 1, U(1) << 20);
    require_count_in("--global-batch", U(c.global_batch), 1, U(1) << 30);
    require_count_in("--cutoff", U(c.cutoff), 2, U(1) << 24);
    require_count_in("--val-size", U(c.val_size), 0, U(1) << 40);
    require_count_in("--budget-records", I(c.budget_records), 0, I(1) << 50);
    require_count_in("--budget-tokens", I(c.budget_tokens), 0, I(1) << 60);
    require_number_in("--budget-flops", c.budget_flops, 0, huge);
    require_number_in("--epochs", c.epochs, 0, 1e6);
    require(c.epochs > 0 || c.budget_records > 0 || c.budget_tokens > 0 || c.budget_flops > 0,
            "--epochs 0 trains nothing: give --epochs above 0 or a budget");
    require_number_in("--lr", c.lr, 0, 10);
    require_count_in("--warmup-steps", I(c.warmup_steps), 0, I(1) << 40);
    require_number_in("--warmup-ratio", c.warmup_ratio, 0, 1);
    require_number_in("--weight-decay", c.weight_decay, 0, 10);
    require_number_in("--max-grad-norm", c.max_grad_norm, 0, huge);
    require(std::isfinite(c.lora_dropout) && c.lora_dropout >= 0 && c.lora_dropout < 1,
            "--lora-dropout must be a number from 0 to below 1, got ", c.lora_dropout);
    require_count_in("--eval-every", I(c.eval_every), 0, I(1) << 40);
    require_count_in("--keep-last", I(c.keep_last), 0, 1 << 20);
    require_count_in("--profile-step", I(c.profile_step), 0, I(1) << 40);
}

/// Parses argv; returns nothing after printing --help. The defaults are the paper's for the trainer's method:
/// LoRA lr 3e-4, linear schedule, 100 warmup steps, 5 epochs, group_by_length, loss on prompt and response;
/// full-parameter lr 2e-5, cosine, warmup ratio 0.03, 3 epochs, loss on the response only.
inline std::optional<TrainerCommandLine> parse_trainer_command_line(int argc, char** argv, TrainerDefaults const& d) {
    namespace po = boost::program_options;
    TrainerCommandLine c;
    c.strategy = d.strategy;
    c.lr = d.adapter ? 3e-4 : 2e-5;
    c.schedule = d.adapter ? "linear" : "cosine";
    c.warmup_steps = d.adapter ? 100 : 0;
    c.warmup_ratio = d.adapter ? 0.0 : 0.03;
    c.epochs = d.adapter ? 5 : 3;
    c.group_by_length = d.adapter;
    c.train_on_inputs = d.adapter;
    std::string train_on_inputs = d.adapter ? "on" : "off", group = d.adapter ? "on" : "off";

    po::options_description desc(d.name + ": instruction-tunes a " + (d.adapter ? d.adapter_name + " adapter" : std::string("full model")) +
                                 " on Alpaca data in one or more languages.\nOptions");
    auto add = desc.add_options();
    add("help,h", "print this help");
    add("model-dir", po::value(&c.model_dir), "HF model directory (config.json, model.safetensors or shards, tokenizer); "
        "without it the model starts from random weights (tests, smoke runs)");
    add("tokenizer", po::value(&c.tokenizer), "tokenizer.json or SentencePiece tokenizer.model (default: from --model-dir)");
    add("data", po::value(&c.data)->multitoken()->required(), "LANG=FILE, one per language: Alpaca JSON or JSONL");
    add("languages", po::value(&c.languages)->multitoken(), "languages to train on (default: every --data language)");
    add("strategy", po::value(&c.strategy)->default_value(c.strategy),
        "monolingual, multilingual, downsampled, temperature:T (p_l ~ n_l^(1/T), T >= 1) or weighted:LANG=W,... "
        "(LANG's share of the mixture in proportion to W)");
    add("sample-ids", po::value(&c.sample_ids)->default_value(c.sample_ids),
        "downsampled: shared (the same record ids in every language) or disjoint (each id in one language)");
    add("budget-records", po::value(&c.budget_records)->default_value(0), "stop after this many records (0: unset)");
    add("budget-tokens", po::value(&c.budget_tokens)->default_value(0), "stop after this many tokens (0: unset)");
    add("budget-flops", po::value(&c.budget_flops)->default_value(0), "stop after this many training FLOPs (0: unset)");
    add("epochs", po::value(&c.epochs)->default_value(c.epochs), "epochs of the mixture when no budget is set");
    add("lr", po::value(&c.lr)->default_value(c.lr), "peak learning rate");
    add("schedule", po::value(&c.schedule)->default_value(c.schedule), "constant, linear or cosine (after warmup)");
    add("warmup-steps", po::value(&c.warmup_steps)->default_value(c.warmup_steps), "warmup steps");
    add("warmup-ratio", po::value(&c.warmup_ratio)->default_value(c.warmup_ratio),
        "warmup as a fraction of the steps (used when > 0)");
    add("weight-decay", po::value(&c.weight_decay)->default_value(c.weight_decay), "AdamW weight decay");
    add("max-grad-norm", po::value(&c.max_grad_norm)->default_value(c.max_grad_norm), "clip the global norm (0: off)");
    add("micro-batch", po::value(&c.micro_batch)->default_value(c.micro_batch), "sequences per forward/backward");
    add("global-batch", po::value(&c.global_batch)->default_value(c.global_batch),
        "sequences per optimizer step (micro-batch x accumulation)");
    add("group-by-length", po::value(&group)->default_value(group), "on: HF's length-grouped sampler; off: shuffle");
    add("template", po::value(&c.prompt_template)->default_value(c.prompt_template),
        "alpaca, alpaca_legacy, or an alpaca-lora template JSON file");
    add("train-on-inputs", po::value(&train_on_inputs)->default_value(train_on_inputs),
        "on: loss on prompt and response; off: on the response (+ EOS) only");
    add("cutoff", po::value(&c.cutoff)->default_value(c.cutoff), "most tokens per example");
    add("eos", po::value(&c.eos)->default_value(c.eos),
        "alpaca-lora (EOS appended unless truncated) or stanford (EOS always after the response)");
    add("val-size", po::value(&c.val_size)->default_value(c.val_size), "held-out records per language");
    add("val-seed", po::value(&c.val_seed)->default_value(c.val_seed), "seed of the held-out draw");
    add("eval-every", po::value(&c.eval_every)->default_value(c.eval_every), "optimizer steps between evaluations");
    add("keep-last", po::value(&c.keep_last)->default_value(c.keep_last), "checkpoints kept besides the best");
    add("output-dir", po::value(&c.output_dir)->required(), "where checkpoints, metrics.jsonl and the outputs go");
    add("seed", po::value(&c.seed)->default_value(c.seed), "seed for data order, dropout and random weights");
    add("no-resume", po::bool_switch(&c.no_resume), "start afresh even when output-dir holds checkpoints");
    add("allow-changed-options", po::bool_switch(&c.allow_changed_options),
        "resume even when options that define the run (data, strategy, budget, optimizer, seeds) differ from those "
        "run_config.json recorded; the changes are recorded there (without it such a resume is refused)");
    add("bad-records", po::value(&c.bad_records)->default_value(c.bad_records),
        "fail (stop at the first bad record, naming it) or skip (skip and list each in data_report.txt)");
    add("lora-dropout", po::value(&c.lora_dropout)->default_value(c.lora_dropout), "dropout on the adapter input");
    add("save-dtype", po::value(&c.save_dtype)->default_value(c.save_dtype), "f32, bf16 or f16 for saved weights");
    if (d.adapter)
        add("merge", po::bool_switch(&c.merge),
            "also write output-dir/merged: the base with the adapter merged in (PEFT's merge_and_unload), an HF "
            "checkpoint that transformers loads without PEFT");
    add("attention", po::value(&c.attention)->default_value(c.attention),
        "CUDA attention: auto (fused flash kernels in bf16 up to head_dim 64, else GEMMs), gemm, or flash (the "
        "memory-lean choice for long sequences); the CPU has one path");
    add("gemm-math", po::value(&c.gemm_math),
        "how GEMMs multiply; CPU: fp32 (the default), bf16 (oneDNN on AVX512_BF16 or AMX: bf16 operands, fp32 "
        "accumulation and master weights) or auto (bf16 where the CPU has it); CUDA: bf16 (the default), tf32 or fp32");
    add("zero1", po::bool_switch(&c.zero1),
        "data parallel: shard AdamW's moments over the ranks (ZeRO-1), each rank keeping and saving its shard");
    add("quiet", po::bool_switch(&c.quiet), "no progress line");
    add("profile-step", po::value(&c.profile_step)->default_value(c.profile_step),
        "time this optimizer step (1, 2, ...) region by region into profile.txt and metrics.jsonl (0: none)");

    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return std::nullopt;
    }
    po::notify(vm);
    auto on_off = [](std::string const& v, char const* what) {
        require(v == "on" || v == "off", "--", what, " must be on or off, got '", v, "'");
        return v == "on";
    };
    c.train_on_inputs = on_off(train_on_inputs, "train-on-inputs");
    c.group_by_length = on_off(group, "group-by-length");
    c.strategy = Strategy::parse(c.strategy, "--strategy").spelling();  // refused here, before any work
    check_trainer_numbers(c);
    require(c.sample_ids == "shared" || c.sample_ids == "disjoint", "--sample-ids must be shared or disjoint, got '",
            c.sample_ids, "'");
    return c;
}

}  // namespace polyalpaca
