// The main job for now: train a tiny model of each family on a synthetic token stream and show the loss
// falling. `--min-loss-drop F` makes it exit non-zero unless every run's loss fell by at least F times.
#include <polyalpaca/data/markov_stream.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/train/progress.hpp>
#include <polyalpaca/train/step.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace pa = polyalpaca;
namespace po = boost::program_options;

struct Options {
    std::string family = "all";
    std::string method = "full";
    long steps = 200;
    int micro_batch = 4;
    int accumulation = 2;
    int seq = 32;
    double lr = 1e-2;
    std::uint64_t seed = 42;
    double min_loss_drop = 0;
};

struct RunSummary {
    std::string name;
    pa::Index trainable = 0;
    double first_loss = 0, last_loss = 0, floor = 0, tokens_per_second = 0;
};

// Mean loss of the last few steps, so one noisy batch does not decide the result.
double tail_mean(std::vector<double> const& losses, std::size_t n) {
    n = std::min(n, losses.size());
    double s = 0;
    for (std::size_t i = losses.size() - n; i < losses.size(); ++i) s += losses[i];
    return s / double(n);
}

template <class Model>
RunSummary train(std::string const& name, Options const& o) {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = o.seed});
    pa::AdamW<pa::CpuEigen, float> optimizer(net.parameters().trainable_count(), {.weight_decay = 0.0});
    pa::Schedule schedule{pa::ScheduleKind::Cosine, o.lr, o.steps / 10, o.steps};
    pa::MarkovStream stream(Model::config::vocab, 2, o.seed);

    std::printf("\n== %s: %lld trainable of %lld parameters, %d x %d tokens x %d micro-batches per step\n",
                name.c_str(), (long long)net.parameters().trainable_count(),
                (long long)net.parameters().total_count(), o.micro_batch, o.seq, o.accumulation);
    pa::ProgressLine progress(o.steps, stdout, 10);
    std::vector<double> losses;
    std::int64_t tokens = 0;
    for (long step = 0; step < o.steps; ++step) {
        std::vector<pa::TokenBatch> micro;
        for (int i = 0; i < o.accumulation; ++i) micro.push_back(stream.next_batch(o.micro_batch, o.seq));
        double const lr = schedule.lr_at(step);
        auto const r = pa::train_step(ctx, net, optimizer, std::span<pa::TokenBatch const>(micro), lr, 1.0, step);
        losses.push_back(r.loss);
        tokens += r.tokens;
        progress.update(step + 1, r.loss, lr, tokens);
    }
    progress.finish();
    return {name, net.parameters().trainable_count(), tail_mean({losses.begin(), losses.begin() + 1}, 1),
            tail_mean(losses, 10), stream.entropy_floor(), double(tokens) / progress.seconds_since_start()};
}

template <template <class, class> class Family, class Size>
RunSummary train_method(std::string const& name, Options const& o) {
    if (o.method == "lora") {
        using Lora = pa::LoRA<8, 16, pa::site::AttnOut, pa::site::MlpUp, pa::site::MlpDown>;
        return train<Family<Size, Lora>>(name + " LoRA r8", o);
    }
    return train<Family<Size, pa::NoAdapter>>(name + " full", o);
}

int main(int argc, char** argv) try {
    Options o;
    po::options_description desc("polyalpaca_train_tiny: trains tiny BLOOM, GPT-NeoX and LLaMA models on a synthetic "
                                 "token stream and prints the loss falling.\nOptions");
    desc.add_options()("help,h", "show this help")(
        "family", po::value(&o.family)->default_value(o.family), "bloom, gpt_neox, llama or all")(
        "method", po::value(&o.method)->default_value(o.method),
        "full (all weights train) or lora (adapters only; on these random weights LoRA barely moves the loss, "
        "as its frozen 0.02-scale head limits the logits: the study tunes pretrained models)")(
        "steps", po::value(&o.steps)->default_value(o.steps), "optimizer steps per model")(
        "micro-batch", po::value(&o.micro_batch)->default_value(o.micro_batch), "sequences per micro-batch")(
        "accumulation", po::value(&o.accumulation)->default_value(o.accumulation), "micro-batches per optimizer step")(
        "seq", po::value(&o.seq)->default_value(o.seq), "tokens per sequence")(
        "lr", po::value(&o.lr)->default_value(o.lr), "peak learning rate (10% warmup, cosine decay)")(
        "seed", po::value(&o.seed)->default_value(o.seed), "seed for weights and data")(
        "min-loss-drop", po::value(&o.min_loss_drop)->default_value(o.min_loss_drop),
        "exit with status 1 unless first loss / final loss >= this for every model (0: no check)");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    pa::require(o.method == "full" || o.method == "lora", "--method must be full or lora, got '", o.method, "'");
    pa::require(o.family == "all" || o.family == "bloom" || o.family == "gpt_neox" || o.family == "llama",
                "--family must be bloom, gpt_neox, llama or all, got '", o.family, "'");
    pa::require(o.steps > 0, "--steps must be positive");

    std::vector<RunSummary> runs;
    if (o.family == "all" || o.family == "bloom") runs.push_back(train_method<pa::Bloom, pa::bloom::SizeTiny>("bloom-tiny", o));
    if (o.family == "all" || o.family == "gpt_neox")
        runs.push_back(train_method<pa::GptNeoX, pa::gpt_neox::SizeTiny>("pythia-tiny", o));
    if (o.family == "all" || o.family == "llama") runs.push_back(train_method<pa::Llama, pa::llama::SizeTiny>("llama-tiny", o));

    std::printf("\n| model | trainable | first loss | final loss (mean of last 10) | entropy floor | drop | tok/s |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    bool ok = true;
    for (auto const& r : runs) {
        double const drop = r.first_loss / r.last_loss;
        std::printf("| %s | %lld | %.4f | %.4f | %.4f | %.2fx | %.0f |\n", r.name.c_str(), (long long)r.trainable,
                    r.first_loss, r.last_loss, r.floor, drop, r.tokens_per_second);
        ok = ok && drop >= o.min_loss_drop;
    }
    if (!ok) {
        std::fprintf(stderr, "loss fell by less than the required factor %.2f\n", o.min_loss_drop);
        return 1;
    }
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_train_tiny: %s\n", e.what());
    return 2;
}
