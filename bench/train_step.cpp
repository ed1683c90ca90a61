// Time one CPU training step of a chosen preset (full-parameter and LoRA) and the GFLOP/s of every GEMM
// shape in it, so later changes can be compared. Weights are random: only speed is measured here.
#include <polyalpaca/data/markov_stream.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/study/embedded_default.hpp>
#include <polyalpaca/train/step.hpp>

#include <boost/program_options.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace pa = polyalpaca;
namespace po = boost::program_options;

struct Options {
    std::string preset = "pythia-70m";
    std::string method = "both";
    int batch = 2;
    int seq = 128;
    int repeat = 3;
    int threads = 0;
    double prompt_share = 0;  // leading share of each sequence whose labels are masked (-100), as a prompt's are
    bool profile = false;
};

// The process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB).
double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;
}

double seconds(std::function<void()> const& f) {
    auto const t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of `repeat` runs after one warm-up.
double best_seconds(int repeat, std::function<void()> const& f) {
    f();
    double best = 1e30;
    for (int i = 0; i < repeat; ++i) best = std::min(best, seconds(f));
    return best;
}

struct Gemm {
    std::string what;
    pa::Index m, k, n;  // (m, k) x (k, n)
};

// The GEMMs of one training step on n tokens: forward y = x W^T, backward dx = dy W, dW = dy^T x.
template <class Model>
std::vector<Gemm> gemm_shapes(pa::Index n, bool lora) {
    using C = typename Model::config;
    std::vector<Gemm> out;
    auto linear = [&](std::string const& name, pa::Index in, pa::Index o) {
        out.push_back({name + " fwd", n, in, o});
        out.push_back({name + " bwd dX", n, o, in});
        if (!lora) out.push_back({name + " bwd dW", o, n, in});
    };
    pa::Index const d = C::hidden;
    if constexpr (requires { C::ffn; }) {
        pa::Index const kv = pa::Index(C::kv_heads) * (C::hidden / C::heads);
        linear("q_proj", d, d);
        linear("k/v_proj", d, kv);
        linear("o_proj", d, d);
        linear("gate/up_proj", d, C::ffn);
        linear("down_proj", C::ffn, d);
    } else {
        linear("query_key_value", d, 3 * d);
        linear("attn dense", d, d);
        linear("dense_h_to_4h", d, 4 * d);
        linear("dense_4h_to_h", 4 * d, d);
    }
    out.push_back({"lm_head fwd", n, d, C::vocab});
    out.push_back({"lm_head bwd dX", n, C::vocab, d});
    if (!lora) out.push_back({"lm_head bwd dW", C::vocab, n, d});
    return out;
}

void time_gemms(std::vector<Gemm> const& shapes, int repeat) {
    std::printf("\n| GEMM | (m x k) . (k x n) | ms | GFLOP/s |\n|---|---|---:|---:|\n");
    for (auto const& g : shapes) {
        pa::Matrix<float> a = pa::Matrix<float>::Random(g.m, g.k), b = pa::Matrix<float>::Random(g.k, g.n),
                          c(g.m, g.n);
        double const t = best_seconds(repeat, [&] { c.noalias() = a * b; });
        std::printf("| %s | (%lld x %lld) . (%lld x %lld) | %.2f | %.1f |\n", g.what.c_str(), (long long)g.m,
                    (long long)g.k, (long long)g.k, (long long)g.n, t * 1e3, 2.0 * g.m * g.k * g.n / t * 1e-9);
    }
}

// Prints the step's row; returns the profiled step's table when --profile asks for one, else "".
template <class Model>
std::string time_step(std::string const& label, Options const& o) {
    pa::cpu::Context ctx;
    if (o.threads > 0) ctx.threads = o.threads;
    double init_s = 0;
    auto net_holder = std::unique_ptr<pa::CausalLm<Model, pa::CpuEigen, float>>();
    // LoRA dropout 0.05 as in the paper (and the CUDA benchmark); full-parameter runs have no adapter to drop.
    init_s = seconds([&] {
        net_holder = std::make_unique<pa::CausalLm<Model, pa::CpuEigen, float>>(
            ctx, pa::NetworkOptions{.seed = 0, .adapter_dropout = 0.05});
    });
    auto& net = *net_holder;
    pa::AdamW<pa::CpuEigen, float> optimizer(net.parameters().trainable_count());
    pa::MarkovStream stream(Model::config::vocab, 2, 1);
    std::vector<pa::TokenBatch> micro{stream.next_batch(o.batch, o.seq)};
    int const prompt = int(o.prompt_share * o.seq);
    for (int b = 0; b < o.batch; ++b)
        for (int t = 0; t < prompt; ++t) micro[0].labels(b, t) = pa::ignore_index;
    long step = 0;
    auto one_step = [&] {
        pa::train_step(ctx, net, optimizer, std::span<pa::TokenBatch const>(micro), 1e-4, 1.0, step++);
    };
    double const t = best_seconds(o.repeat, one_step);
    double const tokens = double(o.batch) * o.seq;
    constexpr double mib = 1 << 20;
    std::printf("| %s | %lld | %lld | %d x %d | %.3f | %.1f | %.1f | %.1f | %.1f | %.0f |\n", label.c_str(),
                (long long)net.parameters().total_count(), (long long)net.parameters().trainable_count(), o.batch,
                o.seq, t, tokens / t, init_s, double(pa::activation_bytes_held()) / mib,
                double(ctx.temporaries.peak_bytes()) / mib, peak_rss_mib());
    if (!o.profile) return "";
    auto const [profiled_s, table] = pa::profiled(ctx, [&] { return seconds(one_step); });
    char heading[160];
    std::snprintf(heading, sizeof heading, "\n%s: where one more step's time goes (%.3f s; best step above %.3f s)\n",
                  label.c_str(), profiled_s, t);
    return heading + pa::format_profile(table);
}

template <template <class, class> class Family, class Size, class Lora>
void run_preset(Options const& o) {
    // Peak RSS is the process's so far: run --method full or lora alone to read one method's memory.
    std::printf("| run | parameters | trainable | batch x seq | step s | tokens/s | init s | activations MiB "
                "| temporaries MiB | peak RSS MiB |\n");
    std::printf("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    std::string profiles;
    if (o.method != "lora") profiles += time_step<Family<Size, pa::NoAdapter>>("full-parameter", o);
    if (o.method != "full") profiles += time_step<Family<Size, Lora>>("LoRA r8", o);
    std::printf("%s", profiles.c_str());
    pa::Index const n = pa::Index(o.batch) * o.seq;
    if (o.method != "lora") time_gemms(gemm_shapes<Family<Size, pa::NoAdapter>>(n, false), o.repeat);
    else time_gemms(gemm_shapes<Family<Size, Lora>>(n, true), o.repeat);
}

using QkvLora = pa::LoRA<8, 16, pa::site::Qkv>;
using QkvSplitLora = pa::LoRA<8, 16, pa::site::Query, pa::site::Key, pa::site::Value>;
using QueryValueLora = pa::LoRA<8, 16, pa::site::Query, pa::site::Value>;  // the Alpaca-LoRA recipe

// LLaMA-7B's widths at depth 1 and 2: the difference of two runs is one layer's memory and time, which scaled to
// 32 layers predicts LLaMA-7B (whose fp32 weights alone outgrow a small machine).
struct Llama7bDepth1 : pa::llama::Size7b {
    static constexpr int layers = 1;
};
struct Llama7bDepth2 : pa::llama::Size7b {
    static constexpr int layers = 2;
};

int main(int argc, char** argv) try {
    std::map<std::string, std::function<void(Options const&)>> presets{
        {"bloom-tiny", run_preset<pa::Bloom, pa::bloom::SizeTiny, QkvLora>},
        {"bloom-study", run_preset<pa::Bloom, pa::bloom::SizeStudy, QkvLora>},
        {"bloom-560m", run_preset<pa::Bloom, pa::bloom::Size560m, QkvLora>},
        {"pythia-70m", run_preset<pa::GptNeoX, pa::gpt_neox::Size70m, QkvLora>},
        {"pythia-410m", run_preset<pa::GptNeoX, pa::gpt_neox::Size410m, QkvLora>},
        {"llama-tiny", run_preset<pa::Llama, pa::llama::SizeTiny, QkvSplitLora>},
        {"open_llama-3b", run_preset<pa::Llama, pa::llama::OpenLlama3b, QkvSplitLora>},
        {"llama-7b-depth1", run_preset<pa::Llama, Llama7bDepth1, QueryValueLora>},
        {"llama-7b-depth2", run_preset<pa::Llama, Llama7bDepth2, QueryValueLora>},
    };
    std::string names;
    for (auto const& [name, _] : presets) names += (names.empty() ? "" : ", ") + name;

    Options o;
    po::options_description desc("polyalpaca_bench_train_step: time one CPU training step and its GEMM shapes.\nOptions");
    desc.add_options()("help,h", "show this help")("preset", po::value(&o.preset)->default_value(o.preset),
                                                   ("one of: " + names).c_str())(
        "method", po::value(&o.method)->default_value(o.method), "full, lora or both")(
        "batch", po::value(&o.batch)->default_value(o.batch), "sequences per step")(
        "seq", po::value(&o.seq)->default_value(o.seq), "tokens per sequence")(
        "repeat", po::value(&o.repeat)->default_value(o.repeat), "timed repetitions (best is reported)")(
        "threads", po::value(&o.threads)->default_value(o.threads), "threads (0: Eigen's default)")(
        "prompt-share", po::value(&o.prompt_share)->default_value(o.prompt_share),
        "leading share of each sequence not scored, as a prompt under train_on_inputs=false (0 to 1)")(
        "profile", po::bool_switch(&o.profile), "time one more step region by region (core/step_profile.hpp)");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    auto const it = presets.find(o.preset);
    pa::require(it != presets.end(), "unknown preset '", o.preset, "'; choose one of: ", names);
    pa::require(o.prompt_share >= 0 && o.prompt_share <= 1, "--prompt-share must be in [0, 1], got ", o.prompt_share);
    pa::require(o.method == "full" || o.method == "lora" || o.method == "both", "--method must be full, lora or both");
    if (o.threads > 0) Eigen::setNbThreads(o.threads);
    std::printf("preset %s, %d Eigen threads\n\n", o.preset.c_str(), Eigen::nbThreads());
    it->second(o);
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_train_step: %s\n", e.what());
    return 2;
}
