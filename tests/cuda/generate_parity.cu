/// @file tests/cuda/generate_parity.cu
/// @brief Incremental decoding on CUDA against the CPU: the three ops (attention_decode, kv_cache_write,
/// kv_cache_gather) on random data, then generate() on every family's tiny preset. Skips without a GPU.
///
/// Ops: several sequences per call with different past lengths (one new row, and prefills crossing many keys),
/// GQA and ALiBi, and more sequences than one launch's table holds; relative errors max|cuda - cpu| / max|cpu|:
/// attention_decode 1e-5 (fp32; the order of summation and expf differ), the two copies exact.
/// Models: both backends build the model from one seed (bit-identical weights), GemmMath::Fp32; the prefill's
/// logits of three prompts of different lengths must agree within 1e-5, and greedy and 3-beam generation of 10
/// tokens must give the same tokens (along the CPU's greedy paths the top two logits are at least 3.5e-5 apart
/// and the logits at most 0.41, so a flip needs four times the logits' 1e-5 bound; docs/tolerances.md).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/generate/generate.hpp"
#include "polyalpaca/layers/alibi.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"

#include "cuda_test.cuh"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using pa::cuda_test::expect;
using pa::cuda_test::expect_close;
using pa::cuda_test::to_device;
using pa::cuda_test::to_host;

namespace {

std::vector<float> random_values(pa::Rng& rng, std::size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = float(rng.normal());
    return v;
}

/// Sequences of `rows[i]` new rows after `past[i]` cached positions, each slot `capacity` rows of the cache.
std::vector<pa::CachedSequence> sequences(std::vector<int> const& past, std::vector<int> const& rows, int capacity) {
    std::vector<pa::CachedSequence> seqs;
    for (std::size_t i = 0; i < past.size(); ++i) seqs.push_back({pa::Index(i) * capacity, past[i], rows[i]});
    return seqs;
}

void check_attention_decode(char const* name, std::vector<int> const& past, std::vector<int> const& rows, int heads,
                            int kv_heads, int head_dim, bool alibi, std::uint64_t seed) {
    pa::Rng rng(seed);
    int capacity = 0;
    pa::Index total = 0;
    for (std::size_t i = 0; i < past.size(); ++i) {
        capacity = std::max(capacity, past[i] + rows[i]);
        total += rows[i];
    }
    auto const seqs = sequences(past, rows, capacity);
    pa::Index const cache_rows = pa::Index(past.size()) * capacity;
    pa::Index const q_cols = pa::Index(heads) * head_dim, kv_cols = pa::Index(kv_heads) * head_dim;
    auto const q = random_values(rng, std::size_t(total * q_cols));
    auto const k = random_values(rng, std::size_t(cache_rows * kv_cols));
    auto const v = random_values(rng, std::size_t(cache_rows * kv_cols));
    std::vector<float> slopes;
    for (double s : pa::alibi_slopes(heads)) slopes.push_back(float(s));
    float const scale = 1.0f / std::sqrt(float(head_dim));

    pa::cpu::Context cpu;
    std::vector<float> want(q.size());
    pa::cpu::attention_decode<float>(cpu, pa::View<float const>(q.data(), total, q_cols),
                                     pa::View<float const>(k.data(), cache_rows, kv_cols),
                                     pa::View<float const>(v.data(), cache_rows, kv_cols),
                                     pa::View<float>(want.data(), total, q_cols), seqs, heads, kv_heads, head_dim,
                                     alibi ? slopes.data() : nullptr, scale);
    cu::Context ctx;
    auto const dq = to_device(ctx, q), dk = to_device(ctx, k), dv = to_device(ctx, v);
    cu::DeviceBuffer<float> dout(q.size());
    cu::attention_decode(ctx, pa::View<float const>(dq.data(), total, q_cols),
                         pa::View<float const>(dk.data(), cache_rows, kv_cols),
                         pa::View<float const>(dv.data(), cache_rows, kv_cols),
                         pa::View<float>(dout.data(), total, q_cols), seqs, heads, kv_heads, head_dim,
                         alibi ? slopes.data() : nullptr, scale);
    expect_close(to_host(ctx, dout.data(), q.size()), want, 1e-5, std::string("attention_decode ") + name);
}

/// kv_cache_write of new rows, then kv_cache_gather reordering the slots, on both backends: bit-identical.
void check_cache_copies(int slots, std::uint64_t seed) {
    pa::Rng rng(seed);
    int const capacity = 12;
    pa::Index const cols = 24;
    std::vector<int> past, rows;
    for (int s = 0; s < slots; ++s) {
        past.push_back(s % 5);
        rows.push_back(1 + (s * 7) % (capacity - 5));
    }
    auto const seqs = sequences(past, rows, capacity);
    pa::Index total = 0;
    for (int r : rows) total += r;
    pa::Index const cache_rows = pa::Index(slots) * capacity;
    auto const fresh = random_values(rng, std::size_t(total * cols));
    auto cache = random_values(rng, std::size_t(cache_rows * cols));
    std::vector<pa::Index> src, dst;
    std::vector<int> lengths;
    for (int s = 0; s < slots; ++s) {  // every slot takes an earlier (or its own) slot's content
        src.push_back(pa::Index((s * 5) % slots) * capacity);
        dst.push_back(pa::Index(s) * capacity);
        lengths.push_back(past[std::size_t(s)] + rows[std::size_t(s)]);
    }

    cu::Context ctx;
    auto device_cache = to_device(ctx, cache);
    auto const device_fresh = to_device(ctx, fresh);
    pa::cpu::Context cpu;
    pa::cpu::kv_cache_write<float>(cpu, pa::View<float const>(fresh.data(), total, cols),
                                   pa::View<float>(cache.data(), cache_rows, cols), seqs);
    cu::kv_cache_write(ctx, pa::View<float const>(device_fresh.data(), total, cols),
                       pa::View<float>(device_cache.data(), cache_rows, cols), seqs);
    auto const written = to_host(ctx, device_cache.data(), cache.size());
    expect(written == cache, "kv_cache_write, " + std::to_string(slots) + " slots: CUDA differs from the CPU");
    pa::cpu::kv_cache_gather<float>(cpu, pa::View<float>(cache.data(), cache_rows, cols), src, dst, lengths);
    cu::kv_cache_gather(ctx, pa::View<float>(device_cache.data(), cache_rows, cols), src, dst, lengths);
    auto const gathered = to_host(ctx, device_cache.data(), cache.size());
    expect(gathered == cache, "kv_cache_gather, " + std::to_string(slots) + " slots: CUDA differs from the CPU");
    std::printf("  %-48s %s\n", ("kv_cache_write + gather, " + std::to_string(slots) + " slots").c_str(),
                written == cache && gathered == cache ? "identical" : "DIFFER");
}

std::string tokens_text(std::vector<std::int32_t> const& tokens) {
    std::string s;
    for (auto t : tokens) s += (s.empty() ? "" : " ") + std::to_string(t);
    return s;
}

template <class Model>
void check_model(std::string const& label, std::uint64_t seed) {
    using CpuNet = pa::CausalLm<Model, pa::CpuEigen, float>;
    using CudaNet = pa::CausalLm<Model, pa::Cuda, float>;
    constexpr int vocab = Model::config::vocab;
    pa::cpu::Context cpu_ctx;
    cu::Context gpu_ctx;
    gpu_ctx.set_gemm_math(cu::GemmMath::Fp32);
    auto cpu = std::make_unique<CpuNet>(cpu_ctx, pa::NetworkOptions{.seed = seed});
    auto gpu = std::make_unique<CudaNet>(gpu_ctx, pa::NetworkOptions{.seed = seed});
    cpu->set_training(false);
    gpu->set_training(false);

    pa::Rng rng(seed + 1);
    std::vector<std::vector<std::int32_t>> prompts;
    for (int length : {5, 1, 17}) {
        std::vector<std::int32_t> p;
        for (int t = 0; t < length; ++t) p.push_back(std::int32_t(rng.below(vocab)));
        prompts.push_back(std::move(p));
    }

    // The prefill's logits, one step per prompt.
    std::vector<int> capacities;
    std::vector<pa::CacheStep> steps;
    std::vector<std::int32_t> ids;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        capacities.push_back(int(prompts[i].size()) + 10);
        steps.push_back({int(i), int(prompts[i].size())});
        ids.insert(ids.end(), prompts[i].begin(), prompts[i].end());
    }
    auto cpu_cache = cpu->make_cache(capacities);
    auto gpu_cache = gpu->make_cache(capacities);
    pa::Index const n = pa::Index(steps.size());
    std::vector<float> want(std::size_t(n * vocab));
    cpu->forward_cached(cpu_ctx, cpu_cache, steps, ids, pa::View<float>(want.data(), n, vocab));
    cu::DeviceBuffer<float> got(want.size());
    gpu->forward_cached(gpu_ctx, gpu_cache, steps, ids, pa::View<float>(got.data(), n, vocab));
    expect_close(to_host(gpu_ctx, got.data(), want.size()), want, 1e-5, label + " prefill logits");

    auto greedy = pa::GenerationConfig::greedy(10);
    auto beams = greedy;
    beams.num_beams = 3;
    for (auto const& [name, config] : {std::pair{"greedy", greedy}, std::pair{"3-beam", beams}}) {
        auto const a = pa::generate(cpu_ctx, *cpu, prompts, config);
        auto const b = pa::generate(gpu_ctx, *gpu, prompts, config);
        bool same = a.size() == b.size();
        for (std::size_t i = 0; same && i < a.size(); ++i) {
            if (a[i].tokens == b[i].tokens) continue;
            same = false;
            std::printf("FAIL: %s %s, prompt %zu: cpu [%s], cuda [%s]\n", label.c_str(), name, i,
                        tokens_text(a[i].tokens).c_str(), tokens_text(b[i].tokens).c_str());
        }
        std::printf("  %-48s %s\n", (label + " " + name + " tokens").c_str(), same ? "identical" : "DIFFER");
        expect(same, label + " " + name + ": CUDA generated other tokens than the CPU");
    }
    std::fflush(stdout);
}

}  // namespace

int main() try {
    if (pa::cuda_test::no_gpu("cuda.generate_parity")) return 77;
    std::printf("ops\n");
    check_attention_decode("MHA, one new row each", {0, 3, 40}, {1, 1, 1}, 4, 4, 32, false, 1);
    check_attention_decode("GQA 8/2, prefill and steps", {0, 7, 0}, {70, 1, 5}, 8, 2, 64, false, 2);
    check_attention_decode("ALiBi, MQA 6/1", {12, 0}, {3, 33}, 6, 1, 16, true, 3);
    check_attention_decode("ALiBi, 100 sequences (two launches)", std::vector<int>(100, 9),
                           std::vector<int>(100, 2), 4, 4, 8, true, 4);
    check_cache_copies(3, 5);
    check_cache_copies(130, 6);  // three launches of the copy table
    std::printf("models\n");
    check_model<pa::Bloom<pa::bloom::SizeTiny>>("bloom-tiny", 21);
    check_model<pa::GptNeoX<pa::gpt_neox::SizeTiny>>("gpt_neox-tiny", 22);
    check_model<pa::Llama<pa::llama::SizeTiny>>("llama-tiny", 23);
    check_model<pa::Llama<pa::llama::SizeTiny, pa::LoRA<2, 4, pa::site::Query, pa::site::Value>>>("llama-tiny lora",
                                                                                                  24);
    return pa::cuda_test::finish("cuda.generate_parity");
} catch (std::exception const& e) {
    std::printf("FAIL: cuda.generate_parity threw: %s\n", e.what());
    return 1;
}
