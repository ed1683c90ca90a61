/// @file train/trainer.hpp
/// @brief Trainer<Model, Backend, T, Communicator>: runs a mixture to its budget with accumulation, schedule, clipping,
///        per-language evaluation, best/last-k checkpoints, exact resume, metrics.jsonl and a progress line; data
///        parallel over the ranks of a communicator (distributed/communicator.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/data/batching.hpp"
#include "polyalpaca/data/budget.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/optim/schedule.hpp"
#include "polyalpaca/train/checkpoint.hpp"
#include "polyalpaca/train/metrics_log.hpp"
#include "polyalpaca/train/progress.hpp"
#include "polyalpaca/train/step.hpp"

namespace polyalpaca {

struct TrainerOptions {
    BatchingOptions batching;             ///< micro-batch, accumulation, shuffle or group_by_length, pad id
    std::optional<Budget> budget;         ///< what the run may spend; without one, `epochs` epochs of the mixture
    double epochs = 1.0;
    ScheduleKind schedule = ScheduleKind::Linear;
    double lr = 3e-4;
    long warmup_steps = 0;
    double warmup_ratio = 0.0;            ///< used instead of warmup_steps when > 0 (HF: ceil(ratio * steps))
    AdamWConfig adamw{.lr = 3e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
    double max_grad_norm = 1.0;           ///< 0: no clipping
    long eval_every = 200;                ///< optimizer steps between evaluations (0: only at the end)
    int keep_last = 2;                    ///< checkpoints kept besides the best
    std::filesystem::path output_dir;     ///< checkpoints/, metrics.jsonl, run_summary.json
    bool resume = true;                   ///< continue from the newest checkpoint in output_dir when there is one
    FlopCost cost;                        ///< training FLOPs per sequence, for the budget and the summary
    bool show_progress = true;
    long profile_step = 0;                ///< time this step (1-based) by region: profile.txt, metrics.jsonl (0: none)
    /// Data parallel: Replicated (every rank holds all of AdamW's moments) or Zero1 (each rank its shard of them).
    distributed::OptimizerSharding sharding = distributed::OptimizerSharding::Replicated;
};

/// Validation loss of one language: the mean token loss over its held-out examples.
struct LanguageLoss {
    double sum = 0;
    std::int64_t count = 0;
    double mean() const { return count > 0 ? sum / double(count) : 0.0; }
};

struct TrainResult {
    long steps = 0;
    Spend spent;                          ///< records, tokens (of the examples, no padding) and FLOPs trained on
    double seconds = 0;
    double tokens_per_second = 0;         ///< example tokens per second of training
    double best_loss = 0;
    long best_step = -1;
    std::map<std::string, double> best_language_losses;
    std::filesystem::path best_checkpoint;
    bool resumed = false;
};

/// What a run will spend before it starts: the budget (the options', else their epochs of the mixture), the spend
/// at which it stops and its optimizer steps. Trainer::fit trains exactly this; a study's plan prints it.
struct TrainingPlan {
    Budget budget;
    Spend target;
    long steps = 0;
};

inline TrainingPlan plan_training(Mixture const& mixture, TrainerOptions const& options) {
    auto const order_of = [&](std::uint64_t e) { return epoch_order(mixture, e, options.batching); };
    Budget const budget = options.budget.value_or(
        Budget::records(std::int64_t(std::llround(options.epochs * double(order_of(0).size())))));
    Spend const target = spend(mixture.pools(), order_of, budget, options.cost,
                               {.step_records = options.batching.global_batch()});
    long steps = 0;  // whole epochs, then the steps of the last one up to its stop position
    for (std::uint64_t e = 0; e <= target.stop_epoch; ++e) {
        std::size_t const n = e == target.stop_epoch ? target.stop_position : order_of(e).size();
        if (n > 0) steps += long(epoch_steps(n, options.batching).size());
    }
    return {budget, target, steps};
}

/// Data parallel: with a communicator of several ranks, options.batching still describes the global step (its
/// micro-batch and accumulation: the step's micro-batches over all ranks), and the plan, budget, schedule and
/// figures are the one-rank run's. Rank r trains on micro-batches r, r + ranks, ... of each step (train_step sums
/// the gradients), so each record is consumed once per epoch across the ranks and a resume at another number of
/// ranks continues the same global order. Every rank evaluates (the weights are the same on all); rank 0 alone
/// writes metrics.jsonl, the progress line, checkpoints, profile.txt and run_summary.json, and every rank reads the
/// checkpoint it resumes from. Under ZeRO-1 (options.sharding) each rank holds and saves its shard of AdamW's
/// moments; a checkpoint of any number of ranks, sharded or not, resumes at any other.
template <class Model, class Backend, class T = float, class Communicator = distributed::SingleProcess>
class Trainer {
public:
    using Net = CausalLm<Model, Backend, T>;
    using Context = typename Backend::Context;

    /// One rank.
    Trainer(Context& ctx, Net& net, TrainerOptions options)
        requires std::same_as<Communicator, distributed::SingleProcess>
        : Trainer(ctx, net, std::move(options), single_process_) {}

    /// The ranks of `communicator`, which must outlive the trainer.
    Trainer(Context& ctx, Net& net, TrainerOptions options, Communicator& communicator)
        : ctx_(ctx), net_(net), options_(std::move(options)),
          shard_(optimizer_shard(net.parameters().trainable_count(), options_.sharding, communicator)),
          adamw_(shard_.count, options_.adamw), communicator_(communicator) {
        require(!options_.output_dir.empty(), "the trainer needs an output directory");
    }

    /// Trains on `mixture`, whose pools index into `examples` (examples[pool][ExampleRef::index]), evaluating on
    /// `validation` (language, examples). E is any TokenExample (ids, labels).
    template <TokenExample E>
    TrainResult fit(Mixture const& mixture, std::vector<std::vector<E>> const& examples,
                    std::vector<std::pair<std::string, std::vector<E>>> const& validation) {
        auto const& pools = mixture.pools();
        require(examples.size() == pools.size(), "the mixture has ", pools.size(), " language pools but ",
                examples.size(), " example lists were given");
        auto const order_of = [&](std::uint64_t e) { return epoch_order(mixture, e, options_.batching); };
        auto const get = [&](PlanEntry const& p) -> E const& {
            return examples[p.pool][example_at(pools, p).index];
        };
        TrainingPlan const training = plan_training(mixture, options_);
        Budget const& budget = training.budget;
        Spend const& target = training.target;
        long const total_steps = training.steps;
        require(total_steps > 0, "the budget (", budget.describe(), ") allows no training step");
        Schedule const schedule{options_.schedule, options_.lr,
                                options_.warmup_ratio > 0 ? long(std::ceil(options_.warmup_ratio * double(total_steps)))
                                                          : options_.warmup_steps,
                                total_steps};

        std::filesystem::create_directories(options_.output_dir);
        auto const checkpoints_dir = options_.output_dir / "checkpoints";
        RunState state;
        TrainResult result;
        bool const writes = communicator_.rank() == 0;
        if (auto const found = list_checkpoints(checkpoints_dir); options_.resume && !found.empty()) {
            state = resume_from_newest_readable(found, writes);
            net_.dropout_rng().set_state(state.dropout_rng);
            result.resumed = true;
        }
        MetricsLog metrics = writes ? MetricsLog(options_.output_dir / "metrics.jsonl", result.resumed ? state.step : -1)
                                    : MetricsLog();
        bool const show_progress = options_.show_progress && writes;
        ProgressLine progress(total_steps, stderr, std::max(1L, total_steps / 20), state.step);
        Spend spent = spent_before(pools, order_of, state);
        std::int64_t const tokens_at_start = spent.tokens;
        double const seconds_before = state.extra.value("seconds", 0.0);
        auto const start = std::chrono::steady_clock::now();
        auto elapsed = [&] {
            return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        long last_eval = -1;

        net_.set_training(true);
        for (std::uint64_t e = std::uint64_t(state.epoch); e <= target.stop_epoch; ++e) {
            auto const order = order_of(e);
            std::size_t const limit = e == target.stop_epoch ? target.stop_position : order.size();
            std::size_t const from = e == std::uint64_t(state.epoch) ? std::size_t(state.position) : 0;
            if (from >= limit) continue;
            for (auto const& plan : epoch_steps(limit, options_.batching, from)) {
                auto const mine = rank_share(plan);
                auto batches = step_batches(order, mine, get, options_.batching.pad_id);
                for (std::size_t i = 0; i < batches.size(); ++i)  // dropout keyed by the records, not the rank
                    batches[i].dropout_key = (std::uint64_t(e) << 40) | std::uint64_t(mine.micro_batches[i].begin);
                double const lr = schedule.lr_at(state.step);
                StepResult r;
                try {
                    auto step = [&] {
                        return train_step(ctx_, net_, adamw_, std::span<TokenBatch const>(batches), lr,
                                          options_.max_grad_norm, state.step, communicator_, options_.sharding);
                    };
                    if (state.step + 1 == options_.profile_step) {
                        auto [result, regions] = profiled(ctx_, step);
                        r = result;
                        if (writes) write_profile(regions, state.step + 1, metrics);
                    } else {
                        r = step();
                    }
                } catch (Error const& err) {
                    metrics.write({{"type", "error"}, {"step", state.step}, {"message", err.what()}});
                    if (show_progress) progress.finish();
                    auto const last = list_checkpoints(checkpoints_dir);
                    fail(err.what(), "; the run stopped, the last good checkpoint is ",
                         last.empty() ? std::string("none") : last.back().second.string());
                }
                for (std::size_t i = plan.records.begin; i < plan.records.end; ++i) add_spend(spent, pools, order[i]);
                ++state.step;
                state.epoch = long(e);
                state.position = long(plan.records.end);
                state.tokens = spent.tokens;
                metrics.write({{"type", "step"}, {"step", state.step}, {"epoch", double(e) + double(plan.records.end) / double(order.size())},
                               {"loss", r.loss}, {"lr", lr}, {"grad_norm", r.grad_norm}, {"records", spent.records},
                               {"tokens", spent.tokens}, {"tokens_per_second", double(spent.tokens) / elapsed()},
                               {"batch_tokens", r.tokens}});  // the step's micro-batches, padding included, all ranks
                if (show_progress) progress.update(state.step, r.loss, lr, spent.tokens - tokens_at_start);
                bool const last_step = state.step == total_steps;
                if (last_step || (options_.eval_every > 0 && state.step % options_.eval_every == 0)) {
                    if (plan.records.end == order.size()) {  // the checkpoint resumes at the next epoch's start
                        state.epoch = long(e) + 1;
                        state.position = 0;
                    }
                    evaluate_and_checkpoint(validation, state, metrics, elapsed(), checkpoints_dir);
                    last_eval = state.step;
                }
            }
            state.epoch = long(e) + 1;
            state.position = 0;
        }
        if (show_progress) progress.finish();
        if (last_eval != state.step) evaluate_and_checkpoint(validation, state, metrics, elapsed(), checkpoints_dir);

        result.steps = state.step;
        result.spent = spent;
        result.seconds = elapsed();
        result.tokens_per_second = result.seconds > 0 ? double(spent.tokens) / result.seconds : 0.0;
        result.best_loss = state.best_loss;
        result.best_step = state.best_step;
        result.best_language_losses = state.extra.value("best_language_losses", std::map<std::string, double>{});
        result.best_checkpoint = checkpoints_dir / detail::checkpoint_name(state.best_step);
        if (writes) write_summary(result, budget);
        return result;
    }

    /// Mean validation loss per language (dropout off).
    template <TokenExample E>
    std::map<std::string, LanguageLoss> evaluate(std::vector<std::pair<std::string, std::vector<E>>> const& validation) {
        std::map<std::string, LanguageLoss> out;
        for (auto const& [lang, examples] : validation) {
            LanguageLoss& l = out[lang];
            for (std::size_t begin = 0; begin < examples.size(); begin += options_.batching.micro_batch) {
                std::vector<E const*> chunk;
                for (std::size_t i = begin; i < std::min(examples.size(), begin + options_.batching.micro_batch); ++i)
                    chunk.push_back(&examples[i]);
                auto const loss = net_.evaluate(ctx_, collate(std::span<E const* const>(chunk), options_.batching.pad_id));
                l.sum += loss.sum;
                l.count += loss.count;
            }
        }
        return out;
    }

    /// Loads the weights of the best checkpoint (by validation loss) into the network.
    void load_best(TrainResult const& result) {
        load_checkpoint_weights(ctx_, result.best_checkpoint, net_.parameters());
    }

    AdamW<Backend, T>& optimizer() { return adamw_; }

private:
    void add_spend(Spend& s, std::vector<LanguagePool> const& pools, PlanEntry const& p) const {
        auto const& ex = example_at(pools, p);
        double const flops = options_.cost.sequence(ex.tokens);
        ++s.records;
        s.tokens += ex.tokens;
        s.flops += flops;
        auto& l = s.languages[p.pool];
        ++l.records;
        l.tokens += ex.tokens;
        l.flops += flops;
    }

    /// The state of the newest checkpoint every rank can read, its weights and optimizer state loaded. One that
    /// cannot be read (a damaged file) is passed over for the one before, saying which and why; none readable is an
    /// Error listing why each failed.
    RunState resume_from_newest_readable(std::vector<std::pair<long, std::filesystem::path>> const& found,
                                         bool writes) {
        std::string reasons;
        for (auto it = found.rbegin(); it != found.rend(); ++it) {
            RunState state;
            std::string reason;
            try {
                state = load_checkpoint(ctx_, it->second, net_.parameters(), adamw_, shard_);
            } catch (Error const& e) {
                reason = e.what();
            }
            std::array<double, 1> failed{reason.empty() ? 0.0 : 1.0};  // the ranks decide together
            communicator_.all_reduce_sum(std::span<double>(failed));
            if (failed[0] == 0) {
                if (writes && !reasons.empty())
                    std::fprintf(stderr, "resuming from %s instead: %s\n", it->second.string().c_str(),
                                 reasons.c_str());
                return state;
            }
            if (reason.empty()) reason = "another rank could not read its part";
            reasons += (reasons.empty() ? "" : "; ") + it->second.filename().string() + " cannot be resumed from (" +
                       reason + ")";
        }
        fail("no checkpoint in ", found.front().second.parent_path().string(), " can be resumed from: ", reasons,
             "; use --no-resume to start afresh");
    }

    /// What the records before a resume point cost (so a resumed run reports the whole run's spend).
    template <class OrderOf>
    Spend spent_before(std::vector<LanguagePool> const& pools, OrderOf const& order_of, RunState const& state) const {
        Spend s;
        for (auto const& pool : pools) s.languages.push_back({pool.lang, 0, 0, 0.0});
        for (std::uint64_t e = 0; e <= std::uint64_t(state.epoch); ++e) {
            if (e == std::uint64_t(state.epoch) && state.position == 0) break;
            auto const order = order_of(e);
            std::size_t const n = e == std::uint64_t(state.epoch) ? std::size_t(state.position) : order.size();
            for (std::size_t i = 0; i < n; ++i) add_spend(s, pools, order[i]);
        }
        return s;
    }

    /// The profiled step's regions: a table in profile.txt (written atomically) and a record in metrics.jsonl.
    void write_profile(ProfileTable const& regions, long step, MetricsLog& metrics) {
        nlohmann::json record{{"type", "profile"}, {"step", step}, {"backend", Backend::name},
                              {"total_ms", regions.total_ms()}};
        for (int r = 0; r < region_count; ++r) {
            auto const region = Region(r);
            if (regions.region_ms(region) == 0) continue;
            record["regions"][region_key(region)] = {{"forward_ms", regions.at(Phase::Forward, region)},
                                                     {"backward_ms", regions.at(Phase::Backward, region)},
                                                     {"update_ms", regions.at(Phase::Update, region)}};
        }
        metrics.write(record);
        io::write_file_atomically(options_.output_dir / "profile.txt",
                                  "step " + std::to_string(step) + " on " + Backend::name + ", by region (ms)\n" +
                                      format_profile(regions));
    }

    /// Evaluates every language, logs it, tracks the best, writes a checkpoint and prunes old ones.
    template <class Validation>
    void evaluate_and_checkpoint(Validation const& validation, RunState& state, MetricsLog& metrics, double seconds,
                                 std::filesystem::path const& checkpoints_dir) {
        nlohmann::json record{{"type", "eval"}, {"step", state.step}};
        double sum = 0;
        std::int64_t count = 0;
        std::map<std::string, double> per_language;
        net_.set_training(false);
        for (auto const& [lang, loss] : evaluate(validation)) {
            per_language[lang] = loss.mean();
            record["languages"][lang] = {{"loss", loss.mean()}, {"tokens", loss.count}};
            sum += loss.sum;
            count += loss.count;
        }
        net_.set_training(true);
        double const mean = count > 0 ? sum / double(count) : 0.0;
        record["loss"] = mean;
        require(std::isfinite(mean), "step ", state.step, ": the validation loss is not finite (", mean, ")");
        if (count == 0) {  // nothing to compare (no validation set, or every label masked): the last is the best
            state.best_step = state.step;
        } else if (state.best_step < 0 || mean < state.best_loss) {
            state.best_loss = mean;
            state.best_step = state.step;
            state.extra["best_language_losses"] = per_language;
        }
        record["validation_tokens"] = count;
        record["best_step"] = state.best_step;
        metrics.write(record);
        state.dropout_rng = net_.dropout_rng().state();
        state.extra["seconds"] = seconds;
        if (options_.sharding == distributed::OptimizerSharding::Zero1)
            save_sharded_checkpoint(ctx_, checkpoints_dir, net_.parameters(), adamw_, state, communicator_);
        else if (communicator_.rank() == 0)
            save_checkpoint(ctx_, checkpoints_dir, net_.parameters(), adamw_, state);
        if (communicator_.rank() == 0) prune_checkpoints(checkpoints_dir, options_.keep_last, state.best_step);
        distributed::barrier(communicator_);  // no rank goes on (to load_best, say) before the checkpoint is there
    }

    /// The trainable values whose AdamW moments this rank holds: all of them, or under ZeRO-1 its shard.
    static distributed::Shard optimizer_shard(Index trainable, distributed::OptimizerSharding sharding,
                                              Communicator const& communicator) {
        if (sharding == distributed::OptimizerSharding::Replicated) return {0, trainable};
        require(trainable >= communicator.size(), "ZeRO-1 over ", communicator.size(), " ranks needs at least one ",
                "trainable value a rank; the model has ", trainable);
        return distributed::shard_of(trainable, communicator.size(), communicator.rank());
    }

    /// This rank's micro-batches of a global step: r, r + ranks, ... (the others' are never collated here).
    StepPlan rank_share(StepPlan const& step) const {
        int const ranks = communicator_.size();
        if (ranks == 1) return step;
        StepPlan mine{step.records, {}};
        for (std::size_t j = std::size_t(communicator_.rank()); j < step.micro_batches.size(); j += std::size_t(ranks))
            mine.micro_batches.push_back(step.micro_batches[j]);
        return mine;
    }

    void write_summary(TrainResult const& r, Budget const& budget) const {
        nlohmann::json j{{"steps", r.steps},
                         {"budget", budget.describe()},
                         {"spent", {{"records", r.spent.records}, {"tokens", r.spent.tokens}, {"flops", r.spent.flops}}},
                         {"seconds", r.seconds},
                         {"tokens_per_second", r.tokens_per_second},
                         {"best_step", r.best_step},
                         {"best_validation_loss", r.best_loss},
                         {"best_validation_loss_per_language", r.best_language_losses},
                         {"best_checkpoint", r.best_checkpoint.string()},
                         {"resumed", r.resumed}};
        for (auto const& l : r.spent.languages)
            j["spent"]["languages"][l.lang] = {{"records", l.records}, {"tokens", l.tokens}, {"flops", l.flops}};
        io::write_file_atomically(options_.output_dir / "run_summary.json", j.dump(2) + "\n");
    }

    Context& ctx_;
    Net& net_;
    TrainerOptions options_;
    distributed::SingleProcess single_process_;  ///< the communicator of the one-rank constructor
    distributed::Shard shard_;                   ///< the trainable values whose moments adamw_ holds
    AdamW<Backend, T> adamw_;
    Communicator& communicator_;
};

}  // namespace polyalpaca
