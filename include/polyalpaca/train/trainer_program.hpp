/// @file train/trainer_program.hpp
/// @brief The whole command-line trainer behind the generated example trainers: data and tokenizer in, mixture,
///        budget, training, and a PEFT adapter or HF checkpoint plus a run summary out.
#pragma once

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/data/alpaca.hpp"
#include "polyalpaca/data/examples.hpp"
#include "polyalpaca/data/mixture.hpp"
#include "polyalpaca/data/mixture_split.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/hf_weights.hpp"
#include "polyalpaca/io/adapter_merge.hpp"
#include "polyalpaca/io/peft.hpp"
#include "polyalpaca/tokenizer/file_bytes.hpp"
#include "polyalpaca/tokenizer/tokenizer.hpp"
#include "polyalpaca/train/flops.hpp"
#include "polyalpaca/train/kernel_record.hpp"
#include "polyalpaca/train/program_options.hpp"
#include "polyalpaca/train/resume_check.hpp"
#include "polyalpaca/train/trainer.hpp"

namespace polyalpaca {

namespace program_detail {

inline std::pair<std::string, std::string> split_pair(std::string const& s, char const* option) {
    auto const eq = s.find('=');
    require(eq != std::string::npos && eq > 0 && eq + 1 < s.size(), "--", option, " takes LANG=VALUE, got '", s, "'");
    return {s.substr(0, eq), s.substr(eq + 1)};
}

inline Tokenizer load_tokenizer(TrainerCommandLine const& c) {
    namespace fs = std::filesystem;
    fs::path path = c.tokenizer;
    if (path.empty() && !c.model_dir.empty()) {
        for (char const* name : {"tokenizer.json", "tokenizer.model"})
            if (fs::exists(c.model_dir / name)) {
                path = c.model_dir / name;
                break;
            }
    }
    require(!path.empty(), "no tokenizer: give --tokenizer, or a --model-dir holding tokenizer.json or tokenizer.model");
    return path.extension() == ".json" ? Tokenizer::from_hf_json(path) : Tokenizer::from_sentencepiece(path);
}

inline Mixture make_mixture(TrainerCommandLine const& c, std::vector<LanguagePool> const& pools) {
    auto const strategy = Strategy::parse(c.strategy, "--strategy");
    require(strategy.kind != Strategy::Kind::Monolingual || pools.size() == 1,
            "the monolingual strategy trains on one language; give one with --languages (", pools.size(), " given)");
    return make_mixture(strategy, pools, c.sample_ids == "shared" ? SampleIds::Shared : SampleIds::Disjoint, c.seed);
}

inline std::optional<Budget> budget_of(TrainerCommandLine const& c) {
    int const set = (c.budget_records > 0) + (c.budget_tokens > 0) + (c.budget_flops > 0);
    require(set <= 1, "give at most one of --budget-records, --budget-tokens, --budget-flops");
    if (c.budget_records > 0) return Budget::records(c.budget_records);
    if (c.budget_tokens > 0) return Budget::tokens(c.budget_tokens);
    if (c.budget_flops > 0) return Budget::flops(c.budget_flops);
    return std::nullopt;
}

/// The base model an adapter names in adapter_config.json: --model-dir as an absolute path, so PEFT finds it from
/// any working directory (a relative path would send AutoPeftModelForCausalLM to the Hub); "" without one.
inline std::string base_model_path(std::filesystem::path const& model_dir) {
    return model_dir.empty() ? "" : std::filesystem::absolute(model_dir).lexically_normal().string();
}

/// Copies the run's tokenizer next to a saved model, so that AutoTokenizer loads from there too: --model-dir's
/// tokenizer files, then --tokenizer (the one the run used) as tokenizer.json or tokenizer.model.
inline void copy_tokenizer_files(TrainerCommandLine const& c, std::filesystem::path const& dir) {
    namespace fs = std::filesystem;
    auto const copy = [&](fs::path const& from, fs::path const& name) {
        io::write_file_atomically(dir / name, tokenizer::read_file_bytes(from));
    };
    if (!c.model_dir.empty())
        for (char const* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
            if (fs::exists(c.model_dir / name)) copy(c.model_dir / name, name);
    if (!c.tokenizer.empty()) copy(c.tokenizer, c.tokenizer.extension() == ".json" ? "tokenizer.json" : "tokenizer.model");
}

inline io::DType dtype_of(std::string const& s) {
    if (s == "f32") return io::DType::F32;
    if (s == "bf16") return io::DType::BF16;
    if (s == "f16") return io::DType::F16;
    fail("--save-dtype must be f32, bf16 or f16, got '", s, "'");
}

}  // namespace program_detail

namespace program_detail {

/// The backend's context, on this rank's device when the communicator gives each rank one.
template <class Backend, class Communicator>
typename Backend::Context make_context(Communicator const& world) {
    if constexpr (requires { world.device(); })
        return typename Backend::Context(world.device());
    else
        return typename Backend::Context();
}

/// The trainer program on one rank of `world` (run_trainer_program).
template <class Model, class Backend, class Communicator>
int train(int argc, char** argv, TrainerDefaults const& defaults, Communicator& world) {
    auto const parsed = parse_trainer_command_line(argc, argv, defaults);
    if (!parsed) return 0;
    auto const& c = *parsed;
    bool const writes = world.rank() == 0;  // rank 0 alone writes files and prints
    std::size_t const micro_batches = batching_for_global(c.global_batch, c.micro_batch).accumulation;
    require(micro_batches % std::size_t(world.size()) == 0, "--global-batch ", c.global_batch, " is ", micro_batches,
            " micro-batches of ", c.micro_batch, ", which do not split evenly over ", world.size(), " ranks");
    // First: a missing GPU stops the program before any data is read. A communicator of GPUs (distributed::Nccl)
    // names this rank's.
    typename Backend::Context ctx = make_context<Backend>(world);
    constexpr int head_dim = attention_head_dim<Model>;
    select_attention_kernel<Backend>(ctx, c.attention);
    if (!c.gemm_math.empty()) select_gemm_math<Backend>(ctx, c.gemm_math);
    require_attention_compiled<Backend>(ctx, head_dim);  // before anything is written
    // A resume continues the run in output-dir only under the options it started with (train/resume_check.hpp).
    auto const options = defining_options(c, has_adapter_weights<typename Model::adapter>);
    ResumeCheck resume;
    if (auto const found = list_checkpoints(c.output_dir / "checkpoints"); !c.no_resume && !found.empty())
        resume = check_resume_options(c.output_dir, found.back().first, found.back().second, options,
                                      c.allow_changed_options);
    // Names read only when training starts or ends are checked now, before any work.
    (void)dtype_of(c.save_dtype);
    (void)schedule_kind_named(c.schedule, "--schedule");

    auto const tokenizer = load_tokenizer(c);
    require(tokenizer.vocab_size() <= Model::config::vocab, "the tokenizer has ", tokenizer.vocab_size(),
            " tokens but the model's vocabulary holds ", Model::config::vocab);
    require(tokenizer.eos_id().has_value(), "the tokenizer '", tokenizer.origin(), "' defines no EOS token");

    // Records and examples per language, in --data order.
    require(c.bad_records == "fail" || c.bad_records == "skip", "--bad-records must be fail or skip");
    auto const policy = c.bad_records == "fail" ? BadRecordPolicy::Fail : BadRecordPolicy::Skip;
    auto const prompt_template = PromptTemplate::from_name_or_file(c.prompt_template);
    require(c.eos == "alpaca-lora" || c.eos == "stanford", "--eos must be alpaca-lora or stanford");
    ExampleOptions const example_options{.cutoff = c.cutoff, .train_on_inputs = c.train_on_inputs,
                                         .eos = c.eos == "stanford" ? EosPolicy::StanfordAlpaca : EosPolicy::AlpacaLora};
    DataReport report;
    std::map<std::string, std::vector<Example>> by_language;
    std::vector<std::string> order;
    for (auto const& d : c.data) {
        auto const [lang, file] = split_pair(d, "data");
        if (!c.languages.empty() && std::find(c.languages.begin(), c.languages.end(), lang) == c.languages.end())
            continue;
        require(!by_language.count(lang), "language '", lang, "' is given twice in --data");
        auto const records = read_alpaca(file, {.lang = lang, .policy = policy}, report);
        by_language[lang] = make_examples(std::span<Record const>(records), prompt_template, tokenizer,
                                          example_options, policy, report);
        order.push_back(lang);
    }
    for (auto const& lang : c.languages)
        require(by_language.count(lang), "--languages names '", lang, "' but no --data file is given for it");
    {  // an example whose prompt fills the cutoff adds nothing to the loss; if all do, the run would learn nothing
        auto const [examples, scored] = count_scored(by_language);
        require(examples == 0 || scored > 0, "none of the ", examples, " examples has a token the loss scores: ",
                "each prompt fills --cutoff ", c.cutoff, c.train_on_inputs ? "" : " and --train-on-inputs is off",
                "; raise --cutoff", c.train_on_inputs ? "" : " or train on inputs");
        if (scored < examples && writes)
            std::fprintf(stderr, "%zu of %zu examples have no token the loss scores (the prompt fills --cutoff %d); "
                         "listed in data_report.txt\n", examples - scored, examples, int(c.cutoff));
    }

    // Held-out validation split, then the strategy's mixture over what is left.
    std::vector<LanguagePool> all;
    for (auto const& lang : order) all.push_back(make_pool(lang, by_language[lang]));
    auto const split = split_validation(all, {.size = c.val_size, .seed = c.val_seed});
    auto const mixture = make_mixture(c, split.train);
    // run_config.json: what an evaluation labels the run with and needs to rebuild its model, prompts and examples,
    // and the kernels that run: "attention" is the path taken ("flash", "gemm" or "cpu"), not the --attention asked.
    nlohmann::json run_config{{"trainer", defaults.name},         {"method", std::string(Model::adapter::method)},
                              {"strategy", c.strategy},            {"mixture", mixture.name()},
                              {"languages", nlohmann::json::array()}, {"template", c.prompt_template},
                              {"model_dir", c.model_dir.string()}, {"seed", c.seed},
                              {"cutoff", c.cutoff},                {"train_on_inputs", c.train_on_inputs},
                              {"eos", c.eos},                      {"backend", Backend::name},
                              {"attention_requested", c.attention},
                              {"attention", attention_that_runs<Backend>(ctx, head_dim)},
                              {"gemm_math", gemm_math_name<Backend>(ctx)}};
    for (auto const& pool : mixture.pools()) run_config["languages"].push_back(pool.lang);
    run_config["ranks"] = world.size();
    run_config["optimizer_sharding"] = c.zero1 ? "zero1" : "replicated";
    run_config["options"] = options;
    if (!resume.changed_on_resume.is_null()) run_config["changed_on_resume"] = resume.changed_on_resume;
    std::vector<std::vector<Example>> examples;
    for (auto const& pool : mixture.pools()) examples.push_back(by_language[pool.lang]);
    std::vector<std::pair<std::string, std::vector<Example>>> validation;
    for (auto const& pool : split.validation) {
        std::vector<Example> held;
        for (auto const& ref : pool.examples) held.push_back(by_language[pool.lang][ref.index]);
        if (!held.empty()) validation.emplace_back(pool.lang, std::move(held));
    }

    CausalLm<Model, Backend, float> net(ctx, {.seed = c.seed, .adapter_dropout = Model::adapter::has_dropout ? c.lora_dropout : 0.0});
    if (!c.model_dir.empty()) {
        auto const warning = io::load_hf_checkpoint(ctx, net, c.model_dir);
        if (!warning.empty() && writes) std::fprintf(stderr, "%s\n", warning.c_str());
    } else if (writes) {
        std::fprintf(stderr, "no --model-dir: training from random weights (seed %llu)\n", (unsigned long long)c.seed);
    }

    // Inputs read and checked (options, tokenizer, data, model): the first writes.
    if (writes) {
        std::filesystem::create_directories(c.output_dir);
        io::remove_stale_temp_files(c.output_dir, true);  // left by a killed run; no other writer is running yet
        std::ostringstream data_report;
        report.write(data_report);
        io::write_file_atomically(c.output_dir / "data_report.txt", data_report.str());
        for (auto const& change : resume.changes)
            std::fprintf(stderr, "resuming with a changed option (--allow-changed-options): %s\n", change.c_str());
        io::write_file_atomically(c.output_dir / "run_config.json", run_config.dump(2) + "\n");
    }

    TrainerOptions o;
    o.batching = batching_for_global(c.global_batch, c.micro_batch,
                                     c.group_by_length ? SampleOrder::GroupByLength : SampleOrder::Shuffle);
    o.batching.pad_id = tokenizer.pad_id().value_or(*tokenizer.eos_id());
    o.budget = budget_of(c);
    o.epochs = c.epochs;
    o.schedule = schedule_kind_named(c.schedule, "--schedule");
    o.lr = c.lr;
    o.warmup_steps = c.warmup_steps;
    o.warmup_ratio = c.warmup_ratio;
    o.adamw.weight_decay = c.weight_decay;
    o.max_grad_norm = c.max_grad_norm;
    o.eval_every = c.eval_every;
    o.keep_last = c.keep_last;
    o.output_dir = c.output_dir;
    o.resume = !c.no_resume;
    o.cost = flop_cost<Model>();
    o.show_progress = !c.quiet;
    o.profile_step = c.profile_step;
    o.sharding = c.zero1 ? distributed::OptimizerSharding::Zero1 : distributed::OptimizerSharding::Replicated;

    std::string ranks;
    if (world.size() > 1) ranks = ", " + std::to_string(world.size()) + " ranks" + (c.zero1 ? ", ZeRO-1" : "");
    if (writes)
        std::printf("%s: %s, %zu language(s), %lld trainable of %lld parameters, on %s%s\n", defaults.name.c_str(),
                    mixture.name().c_str(), mixture.pools().size(), (long long)net.parameters().trainable_count(),
                    (long long)net.parameters().total_count(), Backend::name, ranks.c_str());
    Trainer<Model, Backend, float, Communicator> trainer(ctx, net, o, world);
    auto const result = trainer.fit(mixture, examples, validation);
    trainer.load_best(result);
    if (!writes) return 0;
    auto const dtype = dtype_of(c.save_dtype);
    std::filesystem::path saved;
    if constexpr (has_adapter_weights<typename Model::adapter>) {
        saved = c.output_dir / "adapter";
        io::save_peft_adapter(ctx, net, saved, base_model_path(c.model_dir), c.lora_dropout);
        if (c.merge) {
            io::save_merged_hf_checkpoint(ctx, net, c.output_dir / "merged", dtype);
            copy_tokenizer_files(c, c.output_dir / "merged");
            saved += " and " + (c.output_dir / "merged").string();
        }
    } else {
        saved = c.output_dir / "model";
        io::save_hf_checkpoint(ctx, net, saved, dtype);
        copy_tokenizer_files(c, saved);
    }

    std::printf("\n| run | steps | records | tokens | training FLOPs | tokens/s | best step | best val loss |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    std::printf("| %s | %ld | %lld | %lld | %.3e | %.0f | %ld | %.4f |\n", mixture.name().c_str(), result.steps,
                (long long)result.spent.records, (long long)result.spent.tokens, result.spent.flops,
                result.tokens_per_second, result.best_step, result.best_loss);
    std::printf("\n| language | records | tokens | best val loss |\n|---|---:|---:|---:|\n");
    for (auto const& l : result.spent.languages) {
        auto const it = result.best_language_losses.find(l.lang);
        std::printf("| %s | %lld | %lld | %s |\n", l.lang.c_str(), (long long)l.records, (long long)l.tokens,
                    it == result.best_language_losses.end() ? "-" : std::to_string(it->second).c_str());
    }
    std::printf("\nsaved %s; data report %s; metrics %s\n", saved.string().c_str(),
                (c.output_dir / "data_report.txt").string().c_str(), (c.output_dir / "metrics.jsonl").string().c_str());
    return 0;
}

}  // namespace program_detail

/// Runs a trainer for Model (a family type with its adapter) on Backend (CpuEigen, or Cuda from a .cu program that
/// includes backend/cuda.cuh), data parallel over the ranks of Communicator (distributed/communicator.hpp; e.g.
/// distributed::Mpi from a program that includes distributed/mpi.hpp, distributed::Nccl on GPUs from one that
/// includes distributed/nccl.cuh: every rank reads the data and trains its share of each global step; rank 0 alone
/// writes and prints). Returns the process exit status. An error one rank meets
/// alone ends every rank (Mpi::abort) instead of leaving them waiting.
template <class Model, class Backend = CpuEigen, class Communicator = distributed::SingleProcess>
int run_trainer_program(int argc, char** argv, TrainerDefaults const& defaults) try {
    Communicator world;
    try {
        return program_detail::train<Model, Backend>(argc, argv, defaults, world);
    } catch (std::exception const& e) {
        if constexpr (!std::is_same_v<Communicator, distributed::SingleProcess>) {
            if (world.size() > 1) world.abort(defaults.name + ": " + e.what(), 2);
        }
        throw;
    }
} catch (std::exception const& e) {
    std::fprintf(stderr, "%s: %s\n", defaults.name.c_str(), e.what());
    return 2;
}

}  // namespace polyalpaca
