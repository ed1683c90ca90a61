/// @file tests/cuda/frozen_bf16.cu
/// @brief cuda::FrozenInBf16 against the same LoRA network keeping its frozen weights in fp32, on the GPU in
/// GemmMath::Bf16: BLOOM-mini (fused qkv, tied head) and LLaMA-tiny (separate q/k/v, untied head), the same seed and
/// batches. Every GEMM reads a frozen weight from its bf16 copy either way, so the results must be the same bit for
/// bit: the loss, gradient norm and updated LoRA weights of three AdamW steps, and greedy decoding. Also: the frozen
/// matrices leave the fp32 arena (the store's arena shrinks by their values), a write into one, a download of one and
/// another GEMM math are errors that say why. Skips without a GPU.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/generate/generate.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/train/step.hpp"

#include "cuda_test.cuh"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using pa::cuda_test::expect;

namespace {

pa::TokenBatch random_batch(int vocab, int batch, int seq, std::uint64_t seed) {
    pa::Rng rng(seed);
    auto ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    for (auto& id : ids) id = std::int32_t(rng.next_u64() % std::uint64_t(vocab));
    return pa::make_lm_batch(ids);
}

/// The trainable (LoRA) weights: after a step they hold its gradients' effect (the step consumes the gradients).
template <class Net>
std::vector<float> lora_weights(cu::Context& ctx, Net& net) {
    std::vector<float> out(std::size_t(net.parameters().trainable_count()));
    pa::Cuda::download(ctx, net.parameters().trainable_values(), out.data(), out.size());
    return out;
}

template <class Model>
void check_model(char const* name) {
    std::printf("%s\n", name);
    cu::Context ctx;
    ctx.set_gemm_math(cu::GemmMath::Bf16);
    using Net = pa::CausalLm<Model, pa::Cuda, float>;
    pa::NetworkOptions const options{.seed = 5, .adapter_dropout = 0.0};
    auto fp32 = std::make_unique<Net>(ctx, options);
    auto bf16 = std::make_unique<Net>(ctx, options);
    auto const frozen_before = bf16->parameters().frozen_count();
    std::string const table = std::string(Model::embedding_name) + ".weight";
    cu::FrozenInBf16 frozen(ctx, bf16->parameters(), table);
    expect(frozen.values() > 0, std::string(name) + ": no frozen matrix was kept in bf16");
    expect(bf16->parameters().frozen_count() == frozen_before, std::string(name) + ": the frozen count changed");
    std::printf("  %zu frozen values in bf16 only (%zu bytes)\n", frozen.values(), frozen.bytes());

    auto const batch = random_batch(Model::config::vocab, 2, 16, 11);
    std::span<pa::TokenBatch const> const micro(&batch, 1);
    pa::AdamW<pa::Cuda, float> opt_fp32(fp32->parameters().trainable_count()), opt_bf16(bf16->parameters().trainable_count());
    for (long step = 0; step < 3; ++step) {
        auto const a = pa::train_step(ctx, *fp32, opt_fp32, micro, 1e-2, 1.0, step);
        auto const b = pa::train_step(ctx, *bf16, opt_bf16, micro, 1e-2, 1.0, step);
        expect(a.loss == b.loss, std::string(name) + ": step " + std::to_string(step) + " loss " +
                                     std::to_string(a.loss) + " vs " + std::to_string(b.loss));
        expect(a.grad_norm == b.grad_norm && lora_weights(ctx, *fp32) == lora_weights(ctx, *bf16),
               std::string(name) + ": step " + std::to_string(step) + " LoRA gradients or updates differ");
    }
    std::vector<std::vector<std::int32_t>> const prompts{{1, 2, 3}, {4, 5}};
    pa::GenerationConfig greedy;
    greedy.max_new_tokens = 6;
    auto const g_fp32 = pa::generate(ctx, *fp32, std::span<std::vector<std::int32_t> const>(prompts), greedy);
    auto const g_bf16 = pa::generate(ctx, *bf16, std::span<std::vector<std::int32_t> const>(prompts), greedy);
    for (std::size_t i = 0; i < prompts.size(); ++i)
        expect(g_fp32[i].tokens == g_bf16[i].tokens, std::string(name) + ": greedy decoding differs");

    pa::Parameter<float>* moved = nullptr;
    for (auto* p : bf16->parameters().parameters())
        if (cu::kept_in_bf16_only(*p, table) && !moved) moved = p;
    std::vector<float> host(std::size_t(moved->size()), 0.5f);
    pa::cuda_test::expect_error([&] { pa::Cuda::upload(ctx, host.data(), moved->value, host.size()); },
                                "kept in bf16 only", std::string(name) + ": a write into a bf16-only weight");
    pa::cuda_test::expect_error([&] { pa::Cuda::download(ctx, moved->value, host.data(), host.size()); },
                                "kept in bf16 only", std::string(name) + ": a download of a bf16-only weight");
    ctx.set_gemm_math(cu::GemmMath::Fp32);
    pa::cuda_test::expect_error([&] { (void)bf16->evaluate(ctx, batch); }, "GemmMath::Bf16 alone",
                                std::string(name) + ": fp32 math on bf16-only weights");
    ctx.set_gemm_math(cu::GemmMath::Bf16);
}

}  // namespace

int main() try {
    if (pa::cuda_test::no_gpu("cuda.frozen_bf16")) return 77;
    check_model<pa::Bloom<pa::bloom::SizeMini, pa::LoRA<8, 16, pa::site::Qkv>>>("BLOOM-mini LoRA (qkv)");
    check_model<pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>>(
        "LLaMA-tiny LoRA (q, v)");
    return pa::cuda_test::finish("cuda.frozen_bf16");
} catch (std::exception const& e) {
    std::printf("cuda.frozen_bf16: %s\n", e.what());
    return 1;
}
