/// @file tests/cuda/trainer_parity.cu
/// @brief The Trainer on the CUDA backend against the same Trainer on the CPU: LLaMA-tiny full-parameter and LoRA
/// (query, value; adapter dropout 0, since the GPU draws other masks), the same seed, synthetic three-language
/// corpus, mixture and TrainerOptions (the corpus and options of tests/unit/trainer.cpp). Skips without a GPU.
///
/// For each model (docs/tolerances.md, "Whole models on CUDA"; relative errors |cuda - cpu| / |cpu| per logged loss
/// and max|cuda - cpu| / max|cpu| over the trainable weights):
///   GemmMath::Fp32  every logged step loss and validation loss (mean and per language) within 1e-4, the final
///                   trainable weights within 1e-3, the same best step (fp32 throughout; only the order of summation
///                   differs; AdamW's normalised update turns that into larger weight than loss differences)
///   GemmMath::Bf16  every logged loss within 2e-3, and the last validation loss below the one before training
///                   (by at least 10% for full-parameter training)
///   resume          a CUDA run resumed from a copy of its step-8 checkpoint ends with bit-identical weights and
///                   the same metrics.jsonl (but for the tokens/s timing) as the uninterrupted CUDA run
///   load_best       a fresh CUDA model given the best checkpoint evaluates to the recorded best validation loss
///                   within 1e-6
/// Every measured number is printed. The CPU-simulated values these tolerances rest on (GEMM operands rounded as the
/// GPU does, tests/cuda/bf16_sim) are in docs/tolerances.md.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/mixture.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/train/flops.hpp"
#include "polyalpaca/train/trainer.hpp"

#include "cuda_test.cuh"
#include "../support/trainer_corpus.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
namespace fs = std::filesystem;
using pa::cuda_test::expect;

namespace {

constexpr double fp32_loss_tolerance = 1e-4;     // per logged loss, relative
constexpr double fp32_weight_tolerance = 1e-3;   // final trainable weights, max|d| / max|cpu|
constexpr double bf16_loss_tolerance = 2e-3;     // per logged loss, relative
constexpr double full_min_drop = 0.10;           // full-parameter validation loss must fall by at least this share
constexpr double load_best_tolerance = 1e-6;     // evaluate() after load_best vs the recorded best loss
constexpr long resume_from = 8;                  // the checkpoint a resumed run starts from

using polyalpaca::test_corpus::Corpus;

/// tests/unit/trainer.cpp's options, evaluating (and checkpointing) every 4 of the 16 steps and keeping them all.
template <class Model>
pa::TrainerOptions options(fs::path dir) {
    return pa::test_corpus::corpus_options<Model>(std::move(dir), 4, 10);
}

fs::path fresh(fs::path const& root, std::string const& name) {
    auto const dir = root / name;
    fs::remove_all(dir);
    return dir;
}

/// The losses metrics.jsonl logged: every step's training loss, and every evaluation's mean and per-language loss,
/// each with a key naming it ("step 3", "eval 8", "eval 8 aa").
struct Curve {
    std::vector<std::string> keys;
    std::vector<double> losses;
    std::vector<double> eval_means;  // the evaluations' mean losses, in order
};

Curve read_curve(fs::path const& metrics) {
    std::ifstream in(metrics);
    pa::require(bool(in), "cannot read '", metrics.string(), "'");
    Curve c;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto const j = nlohmann::json::parse(line);
        auto const type = j.at("type").get<std::string>();
        auto const step = std::to_string(j.at("step").get<long>());
        if (type == "step") {
            c.keys.push_back("step " + step);
            c.losses.push_back(j.at("loss").get<double>());
        } else if (type == "eval") {
            c.keys.push_back("eval " + step);
            c.losses.push_back(j.at("loss").get<double>());
            c.eval_means.push_back(c.losses.back());
            for (auto const& [lang, v] : j.at("languages").items()) {
                c.keys.push_back("eval " + step + " " + lang);
                c.losses.push_back(v.at("loss").get<double>());
            }
        }
    }
    return c;
}

/// max |got - want| / |want| over the logged losses (`where` names the worst); infinite when the two logs list
/// different records or a loss is not finite.
double worst_gap(Curve const& got, Curve const& want, std::string* where) {
    if (got.keys != want.keys || want.keys.empty()) return INFINITY;
    double worst = 0;
    for (std::size_t i = 0; i < want.losses.size(); ++i) {
        double const gap = std::abs(got.losses[i] - want.losses[i]) / std::abs(want.losses[i]);
        if (!std::isfinite(gap)) {
            *where = want.keys[i];
            return INFINITY;
        }
        if (i == 0 || gap > worst) worst = gap, *where = want.keys[i];
    }
    return worst;
}

/// Prints the worst relative gap of the CUDA run's logged losses from the CPU's and expects it within tolerance.
/// `what` names the run, e.g. "llama-tiny lora fp32".
void expect_losses_track(Curve const& gpu, Curve const& cpu, double tolerance, std::string const& what) {
    std::string where;
    double const gap = worst_gap(gpu, cpu, &where);
    std::printf("  %-48s worst relative gap %.3e over %zu logged losses (tolerance %.1e; at %s)\n",
                (what + " losses").c_str(), gap, cpu.losses.size(), tolerance, where.c_str());
    expect(gap <= tolerance, what + ": the CUDA losses stray from the CPU's by " + std::to_string(gap) +
                                 " relative (at " + where + ")");
}

/// metrics.jsonl of two runs, equal record for record but for the tokens/s timing field.
bool same_metrics(fs::path const& a, fs::path const& b, int* lines) {
    std::ifstream ma(a), mb(b);
    std::string la, lb;
    *lines = 0;
    while (true) {
        bool const more_a = bool(std::getline(ma, la)), more_b = bool(std::getline(mb, lb));
        if (more_a != more_b) return false;
        if (!more_a) return *lines > 0;
        auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
        ja.erase("tokens_per_second");
        jb.erase("tokens_per_second");
        if (ja != jb) return false;
        ++*lines;
    }
}

double mean_loss(std::map<std::string, pa::LanguageLoss> const& by_language) {
    double sum = 0;
    std::int64_t count = 0;
    for (auto const& [lang, l] : by_language) sum += l.sum, count += l.count;
    return count > 0 ? sum / double(count) : 0.0;
}

/// What one fit leaves: its result, its validation loss before training, its final trainable weights (on the host)
/// and its logged losses.
struct Run {
    pa::TrainResult result;
    double initial_loss = 0;
    std::vector<float> weights;
    Curve curve;
};

template <class Model, class Backend>
Run fit(typename Backend::Context& ctx, Corpus const& c, pa::Mixture const& mixture, std::uint64_t seed,
        fs::path const& dir) {
    pa::CausalLm<Model, Backend, float> net(ctx, {.seed = seed, .adapter_dropout = 0});
    pa::Trainer<Model, Backend> trainer(ctx, net, options<Model>(dir));
    Run run;
    run.initial_loss = mean_loss(trainer.evaluate(c.validation));
    run.result = trainer.fit(mixture, c.train, c.validation);
    auto& store = net.parameters();
    run.weights.resize(std::size_t(store.trainable_count()));
    Backend::download(ctx, store.trainable_values(), run.weights.data(), run.weights.size());
    run.curve = read_curve(dir / "metrics.jsonl");
    return run;
}

template <class Model>
void check_model(std::string const& label, std::uint64_t seed, Corpus const& c, fs::path const& root) {
    std::printf("%s\n", label.c_str());
    auto const mixture = pa::Mixture::downsampled(c.pools, {.ids = pa::SampleIds::Disjoint}, 3);
    auto const tag = [&](std::string const& what) { return label + " " + what; };

    pa::cpu::Context cpu_ctx;
    auto const cpu = fit<Model, pa::CpuEigen>(cpu_ctx, c, mixture, seed, fresh(root, label + "-cpu"));
    std::printf("  %-48s %ld steps, validation %.4f -> best %.4f at step %ld\n", tag("cpu fp32 run").c_str(),
                cpu.result.steps, cpu.initial_loss, cpu.result.best_loss, cpu.result.best_step);

    // 1. Fp32 GEMMs: the same curve and weights but for the order of summation.
    {
        cu::Context ctx;
        ctx.set_gemm_math(cu::GemmMath::Fp32);
        auto const gpu = fit<Model, pa::Cuda>(ctx, c, mixture, seed, fresh(root, label + "-fp32"));
        expect_losses_track(gpu.curve, cpu.curve, fp32_loss_tolerance, tag("fp32"));
        expect(gpu.result.best_step == cpu.result.best_step,
               label + ": the fp32 CUDA run's best step is " + std::to_string(gpu.result.best_step) +
                   ", the CPU's " + std::to_string(cpu.result.best_step));
        pa::cuda_test::expect_close(gpu.weights, cpu.weights, fp32_weight_tolerance, tag("fp32 final weights"));
    }

    // 2. Bf16 GEMMs (the default): the curve tracks the CPU's and the model learns. This run is also the
    //    uninterrupted one for the resume check.
    cu::Context ctx;
    ctx.set_gemm_math(cu::GemmMath::Bf16);
    auto const straight_dir = fresh(root, label + "-bf16");
    auto const gpu = fit<Model, pa::Cuda>(ctx, c, mixture, seed, straight_dir);
    {
        expect_losses_track(gpu.curve, cpu.curve, bf16_loss_tolerance, tag("bf16"));
        double const last = gpu.curve.eval_means.empty() ? INFINITY : gpu.curve.eval_means.back();
        std::printf("  %-48s %.4f -> %.4f (cpu %.4f -> %.4f), best %.4f at step %ld\n",
                    tag("bf16 validation loss").c_str(), gpu.initial_loss, last, cpu.initial_loss,
                    cpu.curve.eval_means.empty() ? INFINITY : cpu.curve.eval_means.back(), gpu.result.best_loss,
                    gpu.result.best_step);
        double const need = !Model::adapter::trains_base ? 1.0 : 1.0 - full_min_drop;
        expect(last < need * gpu.initial_loss, label + ": the bf16 CUDA run's validation loss did not fall enough");
        std::printf("  %-48s relative error %.3e (reported, not checked)\n", tag("bf16 final weights").c_str(),
                    pa::cuda_test::relative_error(gpu.weights, cpu.weights));
    }

    // 3a. Resume: what a kill after step 8 leaves (its checkpoint and a metrics log that ran further), run on.
    {
        auto const resumed_dir = fresh(root, label + "-resumed");
        auto const checkpoint = "checkpoint-" + std::to_string(resume_from);
        fs::create_directories(resumed_dir / "checkpoints");
        fs::copy(straight_dir / "checkpoints" / checkpoint, resumed_dir / "checkpoints" / checkpoint);
        fs::copy(straight_dir / "metrics.jsonl", resumed_dir / "metrics.jsonl");
        pa::CausalLm<Model, pa::Cuda, float> net(ctx, {.seed = seed, .adapter_dropout = 0});
        auto const r = pa::Trainer<Model, pa::Cuda>(ctx, net, options<Model>(resumed_dir))
                           .fit(mixture, c.train, c.validation);
        expect(r.resumed, label + ": the run did not resume from " + checkpoint);
        auto const weights = pa::cuda_test::to_host(ctx, net.parameters().trainable_values(),
                                                    std::size_t(net.parameters().trainable_count()));
        std::size_t differing = 0;
        for (std::size_t i = 0; i < std::min(weights.size(), gpu.weights.size()); ++i)
            if (std::memcmp(&weights[i], &gpu.weights[i], sizeof(float)) != 0) ++differing;
        std::printf("  %-48s %zu of %zu weights differ bitwise, relative error %.3e\n",
                    tag("resumed from " + checkpoint).c_str(), differing, gpu.weights.size(),
                    pa::cuda_test::relative_error(weights, gpu.weights));
        expect(weights.size() == gpu.weights.size() && differing == 0,
               label + ": the resumed CUDA run ends with other weights than the uninterrupted one");
        int lines = 0;
        bool const same = same_metrics(straight_dir / "metrics.jsonl", resumed_dir / "metrics.jsonl", &lines);
        std::printf("  %-48s %s after %d records\n", tag("resumed metrics.jsonl").c_str(),
                    same ? "identical" : "DIFFERENT", lines);
        expect(same, label + ": the resumed run's metrics.jsonl differs from the uninterrupted run's");
    }

    // 3b. load_best into a fresh model (its initial weights) restores the best step's validation loss.
    {
        pa::CausalLm<Model, pa::Cuda, float> net(ctx, {.seed = seed, .adapter_dropout = 0});
        pa::Trainer<Model, pa::Cuda> trainer(ctx, net, options<Model>(straight_dir));
        trainer.load_best(gpu.result);
        double const loss = mean_loss(trainer.evaluate(c.validation));
        double const gap = std::abs(loss - gpu.result.best_loss) / std::abs(gpu.result.best_loss);
        std::printf("  %-48s %.6f vs recorded %.6f at step %ld: relative gap %.3e (tolerance %.1e)\n",
                    tag("load_best validation loss").c_str(), loss, gpu.result.best_loss, gpu.result.best_step,
                    gap, load_best_tolerance);
        expect(gap <= load_best_tolerance, label + ": after load_best the validation loss is " +
                                               std::to_string(loss) + ", the best step logged " +
                                               std::to_string(gpu.result.best_loss));
    }
    std::fflush(stdout);
}

using Full = pa::Llama<pa::llama::SizeTiny>;
using Lora = pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;

}  // namespace

int main() {
    fs::path root;
    int code = 1;
    try {
        if (pa::cuda_test::no_gpu("cuda.trainer_parity")) return 77;
        auto const start = std::chrono::steady_clock::now();
        root = fs::temp_directory_path() / ("polyalpaca_cuda_trainer_parity_" + std::to_string(::getpid()));
        fs::remove_all(root);
        Corpus const c;
        check_model<Full>("llama-tiny full", 21, c, root);
        check_model<Lora>("llama-tiny lora", 22, c, root);
        std::printf("  %-48s %.1f s\n", "wall time (8 fits and 2 load_best)",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        code = pa::cuda_test::finish("cuda.trainer_parity");
    } catch (std::exception const& e) {
        std::printf("FAIL: cuda.trainer_parity threw: %s\n", e.what());
    }
    std::error_code ignored;
    if (!root.empty()) fs::remove_all(root, ignored);
    return code;
}
