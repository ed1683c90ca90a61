// Time generation on the CPU: the prefill (the prompts through the network at once) and the decoding steps after it,
// greedy and 4-beam, batch 1 and 4, with each row's peak resident memory against what decoding must hold (weights,
// KV cache). Weights and prompts are random and the length is fixed (no end-of-sequence stop, no n-gram blocking),
// so only speed and memory are measured.
#include <polyalpaca/generate/generate.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/study/embedded_default.hpp>

#include "cpu_bench.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pa = polyalpaca;
namespace po = boost::program_options;

namespace {

struct Options {
    std::string preset = "bloom-study";
    std::string method = "full";
    int prompt_tokens = 32;
    int new_tokens = 32;
    int repeat = 2;
    int threads = 0;
};

/// A line of /proc/self/status ("VmHWM", "VmRSS") in MiB; -1 where the kernel gives none.
double status_mib(std::string const& key) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;  // in kB
    return -1;
}

/// Starts the peak-RSS counter (VmHWM) again from the present RSS (Linux: "5" into clear_refs), so each row reads
/// its own peak. False where the kernel does not allow it.
bool reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    return bool(clear);
}

struct Row {
    char const* decoding;
    std::size_t batch;
    int beams;
};

template <class Model>
void run(Options const& o) {
    using Net = pa::CausalLm<Model, pa::CpuEigen, float>;
    pa::cpu::Context ctx;
    if (o.threads > 0) ctx.threads = o.threads;
    double const rss_before = status_mib("VmRSS");
    auto net = std::make_unique<Net>(ctx, pa::NetworkOptions{.seed = 5});
    constexpr double mib = 1 << 20;
    auto const& params = net->parameters();
    double const weights = double(params.total_count()) * sizeof(float) / mib;
    std::printf("%lld parameters (%lld trainable), weights %.1f MiB; RSS %.1f MiB before the model, %.1f MiB after "
                "building it\n\n",
                (long long)params.total_count(), (long long)params.trainable_count(), weights, rss_before,
                status_mib("VmRSS"));

    pa::Rng rng(9);
    std::vector<std::vector<std::int32_t>> prompts(4);
    for (auto& p : prompts)
        for (int t = 0; t < o.prompt_tokens; ++t) p.push_back(std::int32_t(rng.below(Net::vocab)));

    std::printf("| decoding | batch | prefill tok/s | decode tok/s | ms per step | weights + KV cache MiB | peak RSS "
                "MiB | RSS over weights + KV |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    bool const peaks = reset_peak_rss();
    for (Row const row : {Row{"greedy", 1, 1}, Row{"greedy", 4, 1}, Row{"beam 4", 1, 4}, Row{"beam 4", 4, 4}}) {
        auto config = row.beams == 1 ? pa::GenerationConfig::greedy(o.new_tokens) : pa::GenerationConfig::paper(true);
        config.num_beams = row.beams;
        config.max_new_tokens = o.new_tokens;
        config.no_repeat_ngram_size = 0;  // random weights repeat themselves: keep every step a full step
        config.eos_token_ids.clear();
        // What decoding must hold: the weights and a cache slot per sequence (beam) of prompt + new tokens.
        std::vector<int> capacities(row.batch * std::size_t(row.beams), o.prompt_tokens + o.new_tokens);
        double const cache = double(net->make_cache(capacities).bytes()) / mib;
        double best_prefill = 0, best_decode = 0, best_step_ms = 1e30;
        if (peaks) reset_peak_rss();
        for (int r = 0; r < o.repeat; ++r) {
            pa::GenerationProgress progress;
            auto const out = pa::generate(ctx, *net, std::span(prompts.data(), row.batch), config, &progress);
            pa::require(out.size() == row.batch && out[0].tokens.size() == std::size_t(o.new_tokens),
                        "decoding stopped early");
            best_prefill = std::max(best_prefill, double(progress.prompt_tokens) / progress.prefill_seconds);
            best_decode = std::max(best_decode, double(progress.decoded_tokens) / progress.decode_seconds);
            best_step_ms = std::min(best_step_ms, progress.decode_seconds * 1e3 / (o.new_tokens - 1));
        }
        double const peak = peaks ? status_mib("VmHWM") : -1;
        std::printf("| %s | %zu | %.0f | %.0f | %.1f | %.1f | %s | %s |\n", row.decoding, row.batch, best_prefill,
                    best_decode, best_step_ms, weights + cache,
                    peak > 0 ? std::to_string(int(peak + 0.5)).c_str() : "n/a",
                    peak > 0 ? (std::to_string(int(100 * peak / (weights + cache) + 0.5)) + "%").c_str() : "n/a");
    }
    std::printf("\nprompts of %d tokens, %d new tokens each, %d CPU threads, best of %d; decode tok/s counts every "
                "sequence (beam) a step advances\n",
                o.prompt_tokens, o.new_tokens, ctx.threads, o.repeat);
}

template <template <class, class> class Family, class Size, class Lora>
void run_preset(Options const& o) {
    if (o.method == "full")
        run<Family<Size, pa::NoAdapter>>(o);
    else
        run<Family<Size, Lora>>(o);
}

}  // namespace

int main(int argc, char** argv) try {
    std::map<std::string, std::function<void(Options const&)>> presets{
        {"bloom-study", run_preset<pa::Bloom, pa::bloom::SizeStudy, pa::bench::QkvLora>},
        {"bloom-560m", run_preset<pa::Bloom, pa::bloom::Size560m, pa::bench::QkvLora>},
        {"pythia-70m", run_preset<pa::GptNeoX, pa::gpt_neox::Size70m, pa::bench::QkvLora>},
        {"pythia-410m", run_preset<pa::GptNeoX, pa::gpt_neox::Size410m, pa::bench::QkvLora>},
        {"llama-tiny", run_preset<pa::Llama, pa::llama::SizeTiny, pa::bench::QkvSplitLora>},
    };
    std::string names;
    for (auto const& [name, _] : presets) names += (names.empty() ? "" : ", ") + name;

    Options o;
    po::options_description desc("polyalpaca_bench_decode: time prefill and decoding on the CPU.\nOptions");
    desc.add_options()("help,h", "show this help")("preset", po::value(&o.preset)->default_value(o.preset),
                                                   ("one of: " + names).c_str())(
        "method", po::value(&o.method)->default_value(o.method),
        "full (a plain model) or lora (r8 adapter, unmerged, as the evaluator runs a LoRA run)")(
        "prompt-tokens", po::value(&o.prompt_tokens)->default_value(o.prompt_tokens), "tokens per prompt")(
        "new-tokens", po::value(&o.new_tokens)->default_value(o.new_tokens), "tokens generated per prompt")(
        "repeat", po::value(&o.repeat)->default_value(o.repeat), "runs per row (the best is reported)")(
        "threads", po::value(&o.threads)->default_value(o.threads), "threads (0: Eigen's default)");
    if (!pa::bench::parse_command_line(argc, argv, desc)) return 0;
    auto const it = presets.find(o.preset);
    pa::require(it != presets.end(), "unknown preset '", o.preset, "'; choose one of: ", names);
    pa::require(o.method == "full" || o.method == "lora", "--method must be full or lora, got '", o.method, "'");
    pa::require(o.prompt_tokens >= 1 && o.new_tokens >= 2 && o.repeat >= 1 && o.threads >= 0,
                "--prompt-tokens must be at least 1, --new-tokens at least 2, --repeat at least 1, --threads >= 0");
    pa::bench::use_threads(o.threads);
    std::printf("preset %s (%s), %d Eigen threads\n", o.preset.c_str(), o.method.c_str(), Eigen::nbThreads());
    it->second(o);
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_decode: %s\n", e.what());
    return 2;
}
