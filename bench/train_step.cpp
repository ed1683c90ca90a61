// Time CPU training steps of a chosen preset (full-parameter and LoRA), each step followed by the GEMM shapes in it,
// and say what share of the GEMM rate the step reaches, so later changes can be compared. With --gemm-math both,
// fp32 and bf16 steps alternate on one network, and the table has both maths' rates. Weights are random: only
// speed is measured here.
#include <polyalpaca/data/markov_stream.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/study/embedded_default.hpp>
#include <polyalpaca/train/step.hpp>

#include "cpu_bench.hpp"

#include <boost/program_options.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
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
    int accumulation = 1;  // micro-batches per optimizer step
    int repeat = 3;
    int threads = 0;
    double prompt_share = 0;  // leading share of each sequence whose labels are masked (-100), as a prompt's are
    std::string gemm_math = "fp32";  // fp32, bf16, or both (alternating step by step)
    bool profile = false;
};

// The process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB).
double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;
}

struct Gemm {
    std::string what;
    pa::Index m, k, n;  // (m, k) x (k, n)
    int count;          // times a step runs it (once per layer, or once)
    double best = 1e30;       // fp32 (as the step runs it: oneDNN, or Eigen over the BLAS)
    double best_bf16 = 1e30;  // bf16 operands already rounded (oneDNN), when the run times bf16 steps
};

// The GEMMs of one training step on n tokens, of which head_rows are scored (the LM head runs on those only):
// forward y = x W^T, backward dx = dy W, dW = dy^T x.
template <class Model>
std::vector<Gemm> gemm_shapes(pa::Index n, pa::Index head_rows, bool lora) {
    using C = typename Model::config;
    std::vector<Gemm> out;
    // `times` projections of this shape per layer (LLaMA's k and v, gate and up)
    auto linear = [&](std::string const& name, pa::Index in, pa::Index o, int times = 1) {
        out.push_back({name + " fwd", n, in, o, times * C::layers});
        out.push_back({name + " bwd dX", n, o, in, times * C::layers});
        if (!lora) out.push_back({name + " bwd dW", o, n, in, times * C::layers});
    };
    pa::Index const d = C::hidden;
    if constexpr (requires { C::ffn; }) {
        pa::Index const kv = pa::Index(C::kv_heads) * (C::hidden / C::heads);
        linear("q_proj", d, d);
        linear("k/v_proj", d, kv, 2);
        linear("o_proj", d, d);
        linear("gate/up_proj", d, C::ffn, 2);
        linear("down_proj", C::ffn, d);
    } else {
        linear("query_key_value", d, 3 * d);
        linear("attn dense", d, d);
        linear("dense_h_to_4h", d, Model::ffn);
        linear("dense_4h_to_h", Model::ffn, d);
    }
    // The LM head in blocks of the vocabulary, as backend/cpu/lm_head.hpp multiplies it: full blocks, then the rest.
    pa::Index const block = std::min<pa::Index>(pa::cpu::lm_head_vocab_block, C::vocab);
    for (auto const [width, count] : {std::pair{block, C::vocab / block}, std::pair{C::vocab % block, pa::Index(1)}}) {
        if (width == 0) continue;
        out.push_back({"lm_head fwd", head_rows, d, width, int(count)});
        out.push_back({"lm_head bwd dX", head_rows, width, d, int(count)});
        if (!lora) out.push_back({"lm_head bwd dW", width, head_rows, d, int(count)});
    }
    return out;
}

// Times every shape once in fp32 (and, with `bf16`, once on bf16 operands through ctx's oneDNN matmuls), keeping
// each one's best.
void time_gemms_once(pa::cpu::Context& ctx, std::vector<Gemm>& shapes, bool bf16) {
    for (auto& g : shapes) {
        pa::Matrix<float> a = pa::Matrix<float>::Random(g.m, g.k), b = pa::Matrix<float>::Random(g.k, g.n),
                          c(g.m, g.n);
        // fp32 as the step's linear layers multiply (backend/cpu/linear.hpp): oneDNN where the build has it and
        // every side is long enough, else Eigen over OpenBLAS. (The random values' layout does not matter.)
        auto fp32_product = [&] {
            if (pa::cpu::detail::onednn_fp32_product(g.m, g.k, g.n))
                ctx.fp32_matmuls().multiply(pa::cpu::OneDnnMatmuls::Operands::f32, {a.data(), g.m, g.k},
                                            {b.data(), g.k, g.n}, c.data(), false);
            else
                c.noalias() = a * b;
        };
        fp32_product();  // warm: pages touched, BLAS threads up, primitives made
        g.best = std::min(g.best, pa::bench::seconds(fp32_product));
        if (!bf16) continue;
        std::vector<std::uint16_t> a16(std::size_t(a.size())), b16(std::size_t(b.size()));
        pa::cpu::round_to_bf16(ctx.threads, a.data(), a16.data(), a.size());
        pa::cpu::round_to_bf16(ctx.threads, b.data(), b16.data(), b.size());
        auto product = [&] {
            ctx.bf16_gemms().multiply({a16.data(), g.m, g.k}, {b16.data(), g.k, g.n}, c.data(), false);
        };
        product();
        g.best_bf16 = std::min(g.best_bf16, pa::bench::seconds(product));
    }
}

// The GEMM table, and what share of the GEMM rate each math's best step reaches (a step of 0: that math was not
// timed).
void print_gemms(std::vector<Gemm> const& shapes, double fp32_step, double bf16_step) {
    bool const bf16 = bf16_step > 0;
    std::printf("\n| GEMM | (m x k) . (k x n) | per step | fp32 ms | GFLOP/s |%s\n|---|---|---:|---:|---:|%s\n",
                bf16 ? " bf16 ms | GFLOP/s |" : "", bf16 ? "---:|---:|" : "");
    double flops = 0, fp32_seconds = 0, bf16_seconds = 0;
    for (auto const& g : shapes) {
        double const f = 2.0 * double(g.m) * double(g.k) * double(g.n);
        flops += f * g.count;
        fp32_seconds += g.best * g.count;
        bf16_seconds += g.best_bf16 * g.count;
        std::printf("| %s | (%lld x %lld) . (%lld x %lld) | %d | %.2f | %.1f |", g.what.c_str(), (long long)g.m,
                    (long long)g.k, (long long)g.k, (long long)g.n, g.count, g.best * 1e3, f / g.best * 1e-9);
        if (bf16) std::printf(" %.2f | %.1f |", g.best_bf16 * 1e3, f / g.best_bf16 * 1e-9);
        std::printf("\n");
    }
    auto summary = [&](char const* math, double gemm_seconds, double step_seconds) {
        std::printf("\n%s: the step's GEMMs at these rates take %.2f ms (%.2f GFLOP, %.1f GFLOP/s); the best step "
                    "(%.2f ms) runs at %.2f of the GEMM rate (%.1f GFLOP/s of GEMM work)",
                    math, gemm_seconds * 1e3, flops * 1e-9, flops / gemm_seconds * 1e-9, step_seconds * 1e3,
                    gemm_seconds / step_seconds, flops / step_seconds * 1e-9);
    };
    if (fp32_step > 0) summary("fp32", fp32_seconds, fp32_step);
    if (bf16) {
        summary("bf16", bf16_seconds, bf16_step);
        std::printf(", at %.2f of the fp32 GEMM rate", fp32_seconds / bf16_step);
        if (fp32_step > 0)
            std::printf("\nbf16 steps are %.2fx as fast as fp32 steps (best against best)", fp32_step / bf16_step);
    }
    std::printf("\n");
}

// One row per timed step, each step followed by one timing of every GEMM shape of the step, so that the steps and
// the GEMM table see the same machine; then the GEMM table (each shape's best) against the best step. Returns the
// profiled step's table when --profile asks for one, else "".
template <class Model>
std::string time_step(std::string const& label, Options const& o, bool lora) {
    pa::cpu::Context ctx;
    if (o.threads > 0) ctx.threads = o.threads;
    double init_s = 0;
    auto net_holder = std::unique_ptr<pa::CausalLm<Model, pa::CpuEigen, float>>();
    // LoRA dropout 0.05 as in the paper (and the CUDA benchmark); full-parameter runs have no adapter to drop.
    init_s = pa::bench::seconds([&] {
        net_holder = std::make_unique<pa::CausalLm<Model, pa::CpuEigen, float>>(
            ctx, pa::NetworkOptions{.seed = 0, .adapter_dropout = 0.05});
    });
    auto& net = *net_holder;
    pa::AdamW<pa::CpuEigen, float> optimizer(net.parameters().trainable_count());
    pa::MarkovStream stream(Model::config::vocab, 2, 1);
    std::vector<pa::TokenBatch> micro;
    int const prompt = int(o.prompt_share * o.seq);
    for (int m = 0; m < o.accumulation; ++m) {
        micro.push_back(stream.next_batch(o.batch, o.seq));
        for (int b = 0; b < o.batch; ++b)
            for (int t = 0; t < prompt; ++t) micro.back().labels(b, t) = pa::ignore_index;
    }
    long step = 0;
    auto one_step = [&] {
        pa::train_step(ctx, net, optimizer, std::span<pa::TokenBatch const>(micro), 1e-4, 1.0, step++);
    };
    auto gemms = gemm_shapes<Model>(pa::Index(o.batch) * o.seq, pa::Index(o.batch) * std::max(1, o.seq - prompt), lora);
    for (auto& g : gemms) g.count *= o.accumulation;
    double const tokens = double(o.batch) * o.seq * o.accumulation;
    constexpr double mib = 1 << 20;
    std::printf("%s: %lld parameters, %lld trainable, %d micro-batch(es) of %d x %d tokens a step, model built in "
                "%.1f s\n\n",
                label.c_str(), (long long)net.parameters().total_count(), (long long)net.parameters().trainable_count(),
                o.accumulation, o.batch, o.seq, init_s);
    // The maths timed, alternating step by step when both are.
    std::vector<pa::cpu::GemmMath> maths;
    if (o.gemm_math != "bf16") maths.push_back(pa::cpu::GemmMath::Fp32);
    if (o.gemm_math != "fp32") maths.push_back(pa::cpu::GemmMath::Bf16);
    std::printf("| step | GEMMs | ms | tokens/s |\n|---:|---|---:|---:|\n");
    for (auto const math : maths) {
        ctx.set_gemm_math(math);
        double const warm_up = pa::bench::seconds(one_step);
        std::printf("| warm-up | %s | %.2f | %.1f |\n", pa::cpu::to_string(math), warm_up * 1e3, tokens / warm_up);
    }
    std::map<pa::cpu::GemmMath, double> best{{pa::cpu::GemmMath::Fp32, 0.0}, {pa::cpu::GemmMath::Bf16, 0.0}};
    std::uint64_t conversions = 0;  // weights rounded into their bf16 working copies during timed bf16 steps
    for (int r = 1; r <= o.repeat; ++r) {
        for (auto const math : maths) {
            ctx.set_gemm_math(math);
            auto const converted_before = math == pa::cpu::GemmMath::Bf16 ? ctx.bf16_gemms().conversions() : 0;
            double const t = pa::bench::seconds(one_step);
            if (math == pa::cpu::GemmMath::Bf16) conversions += ctx.bf16_gemms().conversions() - converted_before;
            best[math] = best[math] > 0 ? std::min(best[math], t) : t;
            std::printf("| %d | %s | %.2f | %.1f |\n", r, pa::cpu::to_string(math), t * 1e3, tokens / t);
            std::fflush(stdout);
        }
        time_gemms_once(ctx, gemms, best[pa::cpu::GemmMath::Bf16] > 0);
    }
    for (auto const math : maths)
        std::printf("\nbest %s step %.2f ms (%.1f tokens/s)", pa::cpu::to_string(math), best[math] * 1e3,
                    tokens / best[math]);
    std::printf("\nactivations %.1f MiB, temporaries peak %.1f MiB, peak RSS %.0f MiB",
                double(pa::activation_bytes_held()) / mib, double(ctx.temporaries.peak_bytes()) / mib, peak_rss_mib());
    if (best[pa::cpu::GemmMath::Bf16] > 0)
        std::printf(", bf16 working copies of the weights %.1f MiB (%zu; %.1f rounded again per step)",
                    double(ctx.bf16_gemms().copy_bytes()) / mib, ctx.bf16_gemms().copy_count(),
                    double(conversions) / o.repeat);
    std::printf("\n");
    print_gemms(gemms, best[pa::cpu::GemmMath::Fp32], best[pa::cpu::GemmMath::Bf16]);
    if (!o.profile) return "";
    auto const [profiled_s, table] = pa::profiled(ctx, [&] { return pa::bench::seconds(one_step); });
    char heading[200];
    std::snprintf(heading, sizeof heading,
                  "\n%s: where one more step's time goes (%s GEMMs, %.2f ms; best step above %.2f ms)\n",
                  label.c_str(), pa::cpu::to_string(maths.back()), profiled_s * 1e3, best[maths.back()] * 1e3);
    return heading + pa::format_profile(table);
}

/// The methods --method names: one, "both" (full and lora) or "adapters" (lora, dora, ia3).
bool runs(Options const& o, std::string const& method) {
    if (o.method == "both") return method == "full" || method == "lora";
    if (o.method == "adapters") return method != "full";
    return o.method == method;
}

template <template <class, class> class Family, class Size, class Lora, class Dora, class Ia3>
void run_preset(Options const& o) {
    // Peak RSS is the process's so far: run one --method alone to read its memory.
    std::string profiles;
    bool first = true;
    auto step = [&]<class Model>(std::string const& method, std::string const& label) {
        if (!runs(o, method)) return;
        if (!first) std::printf("\n");
        first = false;
        profiles += time_step<Model>(label, o, method != "full");
    };
    step.template operator()<Family<Size, pa::NoAdapter>>("full", "full-parameter");
    step.template operator()<Family<Size, Lora>>("lora", "LoRA r8");
    step.template operator()<Family<Size, Dora>>("dora", "DoRA r8");
    step.template operator()<Family<Size, Ia3>>("ia3", "IA3");
    std::printf("%s", profiles.c_str());
}

using pa::bench::QkvLora;
using pa::bench::QkvSplitLora;
using QueryValueLora = pa::LoRA<8, 16, pa::site::Query, pa::site::Value>;  // the Alpaca-LoRA recipe
// DoRA on each LoRA's modules; IA3 on PEFT's default modules of the family.
using QkvDora = pa::DoRA<8, 16, pa::site::Qkv>;
using QkvSplitDora = pa::DoRA<8, 16, pa::site::Query, pa::site::Key, pa::site::Value>;
using QueryValueDora = pa::DoRA<8, 16, pa::site::Query, pa::site::Value>;
using FusedIa3 = pa::IA3<pa::site::Qkv, pa::site::MlpDown>;
using SplitIa3 = pa::IA3<pa::site::Key, pa::site::Value, pa::site::MlpDown>;

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
        {"bloom-tiny", run_preset<pa::Bloom, pa::bloom::SizeTiny, QkvLora, QkvDora, FusedIa3>},
        {"bloom-study", run_preset<pa::Bloom, pa::bloom::SizeStudy, QkvLora, QkvDora, FusedIa3>},
        {"bloom-560m", run_preset<pa::Bloom, pa::bloom::Size560m, QkvLora, QkvDora, FusedIa3>},
        {"pythia-70m", run_preset<pa::GptNeoX, pa::gpt_neox::Size70m, QkvLora, QkvDora, FusedIa3>},
        {"pythia-410m", run_preset<pa::GptNeoX, pa::gpt_neox::Size410m, QkvLora, QkvDora, FusedIa3>},
        {"llama-tiny", run_preset<pa::Llama, pa::llama::SizeTiny, QkvSplitLora, QkvSplitDora, SplitIa3>},
        {"open_llama-3b", run_preset<pa::Llama, pa::llama::OpenLlama3b, QkvSplitLora, QkvSplitDora, SplitIa3>},
        {"llama-7b-depth1", run_preset<pa::Llama, Llama7bDepth1, QueryValueLora, QueryValueDora, SplitIa3>},
        {"llama-7b-depth2", run_preset<pa::Llama, Llama7bDepth2, QueryValueLora, QueryValueDora, SplitIa3>},
    };
    std::string names;
    for (auto const& [name, _] : presets) names += (names.empty() ? "" : ", ") + name;

    Options o;
    po::options_description desc("polyalpaca_bench_train_step: time CPU training steps and their GEMM shapes.\nOptions");
    desc.add_options()("help,h", "show this help")("preset", po::value(&o.preset)->default_value(o.preset),
                                                   ("one of: " + names).c_str())(
        "method", po::value(&o.method)->default_value(o.method), "full, lora, dora, ia3, both (full and lora) or adapters (lora, dora and ia3)")(
        "batch", po::value(&o.batch)->default_value(o.batch), "sequences per step")(
        "seq", po::value(&o.seq)->default_value(o.seq), "tokens per sequence")(
        "accumulation", po::value(&o.accumulation)->default_value(o.accumulation),
        "micro-batches per optimizer step (the paper's global batch 128 is 32 micro-batches of 4)")(
        "repeat", po::value(&o.repeat)->default_value(o.repeat),
        "timed steps, each followed by a timing of the GEMM table (the best of each is reported)")(
        "threads", po::value(&o.threads)->default_value(o.threads), "threads (0: Eigen's default)")(
        "prompt-share", po::value(&o.prompt_share)->default_value(o.prompt_share),
        "leading share of each sequence not scored, as a prompt under train_on_inputs=false (0 to 1)")(
        "gemm-math", po::value(&o.gemm_math)->default_value(o.gemm_math),
        "fp32, bf16 (oneDNN, on AVX512_BF16 or AMX), or both: fp32 and bf16 steps alternated on one network")(
        "profile", po::bool_switch(&o.profile),
        "time one more step region by region (core/step_profile.hpp), in the last GEMM math listed");
    if (!pa::bench::parse_command_line(argc, argv, desc)) return 0;
    auto const it = presets.find(o.preset);
    pa::require(it != presets.end(), "unknown preset '", o.preset, "'; choose one of: ", names);
    pa::require(o.batch >= 1 && o.seq >= 2 && o.accumulation >= 1 && o.repeat >= 1,
                "--batch, --accumulation and --repeat must be at least 1 and --seq at least 2");
    pa::require(o.prompt_share >= 0 && o.prompt_share <= 1, "--prompt-share must be in [0, 1], got ", o.prompt_share);
    pa::require(o.method == "full" || o.method == "lora" || o.method == "dora" || o.method == "ia3" ||
                    o.method == "both" || o.method == "adapters",
                "--method must be full, lora, dora, ia3, both or adapters, got '", o.method, "'");
    pa::require(o.gemm_math == "fp32" || o.gemm_math == "bf16" || o.gemm_math == "both",
                "--gemm-math must be fp32, bf16 or both, got '", o.gemm_math, "'");
    if (o.gemm_math != "fp32") (void)pa::cpu::gemm_math_from_name("bf16", "--gemm-math");  // refused here, naming why
    pa::bench::use_threads(o.threads);
    std::printf("preset %s, %d Eigen threads\n\n", o.preset.c_str(), Eigen::nbThreads());
    it->second(o);
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_train_step: %s\n", e.what());
    return 2;
}
