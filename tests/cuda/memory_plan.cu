// The memory plan's Cuda target (train/memory_plan.hpp) against real steps on the GPU: the activations layers keep,
// the peak of the temporaries stack, the bf16 working copies and the workspace a real context holds after the plan's
// steps (two training steps on the worst-case batch, an evaluation between them) are the plan's, byte for byte.
#include <cstdio>
#include <span>
#include <string>

#include "cuda_test.cuh"
#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/train/memory_plan.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using pa::cuda_test::expect;

namespace {

template <class Model>
void check(char const* name, cu::GemmMath math) {
    pa::MemoryPlanOptions o;
    o.micro_batch = 2;
    o.seq = 48;
    o.decode_batch = 0;
    auto const plan = pa::plan_memory<Model>(pa::Device::gpu(cu::AttentionKernel::Auto, math), o);

    cu::Context ctx;
    ctx.set_gemm_math(math);
    std::size_t const held_before = pa::activation_bytes_held();
    pa::CausalLm<Model, pa::Cuda, float> net(ctx, {.seed = 0, .adapter_dropout = o.adapter_dropout});
    pa::AdamW<pa::Cuda, float> optimizer(net.parameters().trainable_count());
    auto const batch = pa::worst_case_batch(Model::config::vocab, o.micro_batch, o.seq);
    std::span<pa::TokenBatch const> const micro(&batch, 1);
    pa::train_step(ctx, net, optimizer, micro, 1e-4, 1.0, 1);
    (void)net.evaluate(ctx, batch);
    pa::train_step(ctx, net, optimizer, micro, 1e-4, 1.0, 2);
    ctx.synchronize();
    std::size_t const activations = pa::activation_bytes_held() - held_before;

    std::string const what = std::string(name) + " (" + cu::to_string(math) + ", attention " + plan.attention + ")";
    std::printf("%s: activations %zu planned, %zu held; temporaries %zu, %zu; bf16 copies %zu, %zu\n", what.c_str(),
                plan.activations, activations, plan.temporaries, ctx.temporaries.peak_bytes(), plan.bf16_copies,
                ctx.bf16_copy_bytes());
    expect(plan.activations == activations, what + ": activations");
    expect(plan.temporaries == ctx.temporaries.peak_bytes(), what + ": temporaries");
    expect(plan.bf16_copies == ctx.bf16_copy_bytes(), what + ": bf16 working copies");
    expect(plan.workspace == ctx.workspace_bytes(), what + ": workspace");
}

}  // namespace

int main() {
    if (pa::cuda_test::no_gpu("memory_plan")) return 77;
    using QkvLora = pa::LoRA<8, 16, pa::site::Qkv>;
    for (auto math : {cu::GemmMath::Bf16, cu::GemmMath::Fp32}) {
        check<pa::Bloom<pa::bloom::SizeMini, QkvLora>>("bloom-mini lora", math);
        check<pa::GptNeoX<pa::gpt_neox::Size70m>>("pythia-70m full", math);
        check<pa::Llama<pa::llama::SizeTiny, pa::LoRA<8, 16, pa::site::Query, pa::site::Value>>>("llama-tiny lora",
                                                                                                math);
    }
    std::puts(pa::cuda_test::failures ? "memory_plan: FAILED" : "memory_plan: passed");
    return pa::cuda_test::failures ? 1 : 0;
}
