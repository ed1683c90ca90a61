// End-to-end CUDA training steps (forward_backward + clip + AdamW, train/step.hpp) of BLOOM-560m LoRA and
// full-parameter and LLaMA-7B LoRA at micro-batch 4 x 512, random weights and random tokens. One row per config:
// ms per step, tokens/s, MFU against the H100 SXM bf16 dense peak, and the peak device memory.
//
//   polyalpaca_bench_cuda_train_step [--config bloom-560m-lora|bloom-560m-full|llama-7b-lora]
//                                    [--batch 4] [--seq 512] [--warmup 3] [--steps 10] [--math bf16|tf32|fp32]
//                                    [--attention gemm|flash] [--accumulate 1]
//
// --attention flash runs attention on the fused flash kernels (AttentionKernel::Flash) and suffixes the config's
// name with -flash (e.g. bloom-560m-lora-flash) in the table and the RESULT line.
// --accumulate N makes one step N micro-batches (different random tokens) of gradient accumulation before the clip
// and the AdamW update, as the study's global batch of 128 sequences is 32 micro-batches of 4; the config's name
// gets -accN, ms/step is per optimizer step and tokens/s counts all N micro-batches.
//
// After the timed steps, the forward alone (evaluate) and forward + backward of one micro-batch are timed the same
// way, for the RESULT line's forward_ms and forward_backward_ms: the step's time split into forward, backward (each
// times the micro-batches) and clip + AdamW. Then one more step runs profiled (core/step_profile.hpp): its time by
// phase and region (norms, projections, LoRA branches, attention, ...) as a table and PROFILE lines.
//
// MFU = train FLOPs per token (train/flops.hpp flop_cost: 6 N_mm full, 4 N_mm + 6 N_adapter LoRA, attention over
// the full T x T square) x tokens/s / 989.4e12. Peak memory: bench_common.cuh MemoryWatch, sampled after model
// construction and after every step, less the CUDA context.
#include <chrono>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/backend/cuda/attention.cuh"
#include "polyalpaca/backend/cuda/loss.cuh"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/train/flops.hpp"
#include "polyalpaca/train/step.hpp"

#include "bench_common.cuh"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;

namespace {

struct Settings {
    int batch = 4;
    int seq = 512;
    int warmup = 3;
    int steps = 10;
    cu::GemmMath math = cu::GemmMath::Bf16;
    char const* math_name = "bf16";
    cu::AttentionKernel attention = cu::AttentionKernel::Gemm;
    int accumulate = 1;  ///< micro-batches per optimizer step
};

/// Uniform random tokens, every next token scored (the PyTorch peer's batch has the same shape and labels).
pa::TokenBatch random_batch(int vocab, int batch, int seq, std::uint64_t seed) {
    pa::Rng rng(seed);
    auto ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    for (auto& id : ids) id = std::int32_t(rng.below(std::uint64_t(vocab)));
    return pa::make_lm_batch(std::move(ids));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Model>
void run(char const* config, Settings const& s) {
    using Net = pa::CausalLm<Model, pa::Cuda, float>;
    std::string const name = std::string(config) + (s.attention == cu::AttentionKernel::Flash ? "-flash" : "") +
                             (s.accumulate > 1 ? "-acc" + std::to_string(s.accumulate) : "");
    char const* label = name.c_str();
    constexpr int head_dim = Model::config::hidden / Model::config::heads;
    pa::require(s.attention != cu::AttentionKernel::Flash || cu::flash::supported_head_dim(head_dim), label,
                ": the flash kernels are not compiled for head_dim ", head_dim, " (POLYALPACA_FLASH_HEAD_DIMS)");
    pa::bench::MemoryWatch memory(0);
    cu::Context ctx;
    ctx.set_gemm_math(s.math);
    ctx.set_attention_kernel(s.attention);

    auto const t_init = std::chrono::steady_clock::now();
    // LoRA dropout 0.05 as PEFT's recipe (and tools/peft_train_step.py); without an adapter it has no effect.
    auto net = std::make_unique<Net>(ctx, pa::NetworkOptions{.seed = 1, .adapter_dropout = 0.05});
    pa::AdamW<pa::Cuda, float> optimizer(net->parameters().trainable_count(), {.lr = 1e-4});
    ctx.synchronize();
    double const init_s = seconds_since(t_init);
    memory.sample();

    std::vector<pa::TokenBatch> micro;
    for (int i = 0; i < s.accumulate; ++i)
        micro.push_back(random_batch(Model::config::vocab, s.batch, s.seq, 7 + std::uint64_t(i)));
    std::span<pa::TokenBatch const> const batches(micro);
    long step = 0;
    pa::StepResult first{}, last{};
    for (int i = 0; i < s.warmup; ++i) {
        auto const r = pa::train_step(ctx, *net, optimizer, batches, 1e-4, 1.0, ++step);
        if (i == 0) first = r;
        ctx.synchronize();
        memory.sample();
    }
    cudaEvent_t start = nullptr, stop = nullptr;
    POLYALPACA_CUDA_CHECK(cudaEventCreate(&start));
    POLYALPACA_CUDA_CHECK(cudaEventCreate(&stop));
    auto mean_ms = [&](auto&& call) {  // CUDA-event milliseconds per call over s.steps calls
        POLYALPACA_CUDA_CHECK(cudaEventRecord(start, ctx.stream()));
        for (int i = 0; i < s.steps; ++i) {
            call();
            memory.sample();
        }
        POLYALPACA_CUDA_CHECK(cudaEventRecord(stop, ctx.stream()));
        POLYALPACA_CUDA_CHECK(cudaEventSynchronize(stop));
        memory.sample();
        float total_ms = 0;
        POLYALPACA_CUDA_CHECK(cudaEventElapsedTime(&total_ms, start, stop));
        return double(total_ms) / s.steps;
    };
    double const ms = mean_ms([&] { last = pa::train_step(ctx, *net, optimizer, batches, 1e-4, 1.0, ++step); });
    // Where the step's time goes: the forward with the loss (evaluate: no dropout, no dlogits), then forward and
    // backward (adding into the gradients, which nothing reads afterwards); clip + AdamW is the rest of the step.
    double const forward_ms = mean_ms([&] { (void)net->evaluate(ctx, micro.front()); });
    double const forward_backward_ms = mean_ms([&] { (void)net->forward_backward(ctx, micro.front()); });
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
    // Where one more step's time goes, region by region (core/step_profile.hpp): device time between region
    // boundaries, so a region the host launches more slowly than the GPU runs it shows its launch time.
    auto const regions =
        pa::profiled(ctx, [&] { return pa::train_step(ctx, *net, optimizer, batches, 1e-4, 1.0, ++step); }).second;

    double const tokens = double(s.accumulate) * s.batch * s.seq;
    double const tokens_per_s = tokens / (ms * 1e-3);
    double const flops_per_token = pa::flop_cost<Model>().per_token_at(s.seq);
    double const mfu = flops_per_token * tokens_per_s / (pa::bench::Peaks::bf16_tflops * 1e12);
    if (first.loss == 0) first = last;
    std::printf("| %s | %s | %lld | %lld | %d x %d x %d | %.1f | %.2f | %.0f | %.1f%% | %.2f | %.4f -> %.4f |\n",
                label, s.math_name, (long long)net->parameters().total_count(), (long long)net->parameters().trainable_count(),
                s.accumulate, s.batch, s.seq, init_s, ms, tokens_per_s, 100.0 * mfu, pa::bench::gib(memory.peak()),
                first.loss, last.loss);
    // Where the memory goes: fp32 values (+ gradients of trainable ones), AdamW's two moments, the bf16 working
    // copies of weights, the activations layers keep between forward and backward, and the peak of the
    // temporaries stack; the rest is op scratch, the LM head's chunk and cuBLASLt's workspace.
    auto const& store = net->parameters();
    std::size_t const parameter_bytes = std::size_t(store.total_count() + store.trainable_count()) * sizeof(float);
    std::size_t const optimizer_bytes = std::size_t(2 * store.trainable_count()) * sizeof(float);
    std::printf("RESULT config=%s math=%s tokens_per_s=%.1f ms_per_step=%.3f mfu=%.4f peak_bytes=%zu "
                "flops_per_token=%.6e parameter_bytes=%zu optimizer_bytes=%zu bf16_copy_bytes=%zu "
                "activation_bytes=%zu temporaries_bytes=%zu forward_ms=%.3f forward_backward_ms=%.3f accumulate=%d\n",
                label, s.math_name, tokens_per_s, ms, mfu, memory.peak(), flops_per_token, parameter_bytes,
                optimizer_bytes, ctx.bf16_copy_bytes(), pa::activation_bytes_held().load(),
                ctx.temporaries.peak_bytes(), forward_ms, forward_backward_ms, s.accumulate);
    std::printf("\n%s: where one more step's time goes (%.3f ms profiled over %lld region boundaries)\n%s\n", label,
                regions.total_ms(), (long long)regions.boundaries, pa::format_profile(regions).c_str());
    for (int r = 0; r < pa::region_count; ++r) {
        auto const region = pa::Region(r);
        if (regions.region_ms(region) == 0) continue;
        std::printf("PROFILE config=%s region=%s forward_ms=%.4f backward_ms=%.4f update_ms=%.4f\n", label,
                    pa::region_key(region), regions.at(pa::Phase::Forward, region),
                    regions.at(pa::Phase::Backward, region), regions.at(pa::Phase::Update, region));
    }
    std::fflush(stdout);
}

using BloomLora = pa::Bloom<pa::bloom::Size560m, pa::LoRA<8, 16, pa::site::Qkv>>;
using BloomFull = pa::Bloom<pa::bloom::Size560m>;
/// The Alpaca-LoRA recipe for LLaMA-7B: r 8, alpha 16 on q_proj and v_proj.
using LlamaLora = pa::Llama<pa::llama::Size7b, pa::LoRA<8, 16, pa::site::Query, pa::site::Value>>;

}  // namespace

int main(int argc, char** argv) try {
    pa::bench::Args const args(argc, argv);
    if (args.flag("--help") || args.flag("-h")) {
        std::printf("usage: polyalpaca_bench_cuda_train_step [--config bloom-560m-lora|bloom-560m-full|llama-7b-lora] "
                    "[--batch 4] [--seq 512] [--warmup 3] [--steps 10] [--math bf16|tf32|fp32] "
                    "[--attention gemm|flash] [--accumulate 1]\n");
        return 0;
    }
    Settings s;
    s.batch = args.integer("--batch", s.batch);
    s.seq = args.integer("--seq", s.seq);
    s.warmup = args.integer("--warmup", s.warmup);
    s.steps = args.integer("--steps", s.steps);
    s.accumulate = args.integer("--accumulate", s.accumulate);
    std::string const math = args.value("--math", "bf16");
    if (math == "bf16") s.math = cu::GemmMath::Bf16, s.math_name = "bf16";
    else if (math == "tf32") s.math = cu::GemmMath::Tf32, s.math_name = "tf32";
    else if (math == "fp32") s.math = cu::GemmMath::Fp32, s.math_name = "fp32";
    else pa::fail("--math must be bf16, tf32 or fp32, got '", math, "'");
    std::string const attention = args.value("--attention", "gemm");
    if (attention == "flash") s.attention = cu::AttentionKernel::Flash;
    else pa::require(attention == "gemm", "--attention must be gemm or flash, got '", attention, "'");
    std::string const config = args.value("--config", "all");
    pa::require(config == "all" || config == "bloom-560m-lora" || config == "bloom-560m-full" ||
                    config == "llama-7b-lora",
                "--config must be bloom-560m-lora, bloom-560m-full or llama-7b-lora, got '", config, "'");
    if (cu::device_count() == 0) {
        std::printf("polyalpaca_bench_cuda_train_step: no CUDA device\n");
        return 77;
    }
    {
        cu::Context probe;
        pa::bench::print_device(probe);
    }
    std::printf("\n| config | gemm math | parameters | trainable | micro-batches x batch x seq | init s | ms/step | "
                "tokens/s | MFU | peak GiB | loss first -> last |\n|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|\n");
    int failed = 0;
    auto attempt = [&](char const* name, auto&& body) {  // one failing config (e.g. out of memory) spares the rest
        if (config != "all" && config != name) return;
        try {
            body();
        } catch (std::exception const& e) {
            ++failed;
            std::printf("| %s | %s | failed: %s |\n", name, s.math_name, e.what());
            std::fflush(stdout);
        }
    };
    attempt("bloom-560m-lora", [&] { run<BloomLora>("bloom-560m-lora", s); });
    attempt("bloom-560m-full", [&] { run<BloomFull>("bloom-560m-full", s); });
    attempt("llama-7b-lora", [&] { run<LlamaLora>("llama-7b-lora", s); });
    return failed == 0 ? 0 : 1;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_cuda_train_step: %s\n", e.what());
    return 1;
}
