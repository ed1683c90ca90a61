// The memory plan (train/memory_plan.hpp) against real CpuEigen steps (fp32 and bf16 GEMMs), and the rules that make
// its CUDA plan differ: the flash kernels' state, the bf16 working copies, the LM head chunk's gradient, the workspace.
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/train/memory_plan.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace pa = polyalpaca;

namespace {

using QkvLora = pa::LoRA<8, 16, pa::site::Qkv>;
using QueryValueLora = pa::LoRA<8, 16, pa::site::Query, pa::site::Value>;
using BloomMini = pa::Bloom<pa::bloom::SizeMini>;
using BloomMiniLora = pa::Bloom<pa::bloom::SizeMini, QkvLora>;
using Pythia70m = pa::GptNeoX<pa::gpt_neox::Size70m>;
using Pythia70mLora = pa::GptNeoX<pa::gpt_neox::Size70m, QkvLora>;
using LlamaTiny = pa::Llama<pa::llama::SizeTiny>;
using LlamaTinyLora = pa::Llama<pa::llama::SizeTiny, QueryValueLora>;

constexpr int micro_batch = 2, seq = 48;

pa::MemoryPlanOptions training_only() {
    pa::MemoryPlanOptions o;
    o.micro_batch = micro_batch;
    o.seq = seq;
    o.decode_batch = 0;
    return o;
}

/// Within 10% of the measured value (the plan runs the same layer code, so it should be exact).
bool close(std::size_t planned, std::size_t measured) {
    double const a = double(planned), b = double(measured);
    return a >= 0.9 * b && a <= 1.1 * b;
}

double mib(std::size_t bytes) { return double(bytes) / double(1 << 20); }

/// What a real CpuEigen run of Model holds, measured as bench/train_step.cpp measures it, after the steps the
/// plan dry-runs: two training steps on the plan's worst-case batch with an evaluation between them.
struct Measured {
    std::size_t weights, gradients, optimizer, activations, temporaries, kv_cache, bf16_copies;
};

template <class Model>
Measured measure_cpu(pa::MemoryPlanOptions const& o, pa::cpu::GemmMath math) {
    pa::cpu::Context ctx;
    ctx.set_gemm_math(math);
    std::size_t const held_before = pa::activation_bytes_held();
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 0, .adapter_dropout = o.adapter_dropout});
    auto& store = net.parameters();
    pa::AdamW<pa::CpuEigen, float> optimizer(store.trainable_count());
    auto const batch = pa::worst_case_batch(Model::config::vocab, o.micro_batch, o.seq);
    std::span<pa::TokenBatch const> const micro(&batch, 1);
    pa::train_step(ctx, net, optimizer, micro, 1e-4, 1.0, 1);
    (void)net.evaluate(ctx, batch);
    pa::train_step(ctx, net, optimizer, micro, 1e-4, 1.0, 2);
    Measured m{};
    m.weights = std::size_t(store.total_count()) * sizeof(float);
    m.gradients = std::size_t(store.trainable_count()) * sizeof(float);
    m.optimizer = optimizer.moments().size() * sizeof(float);
    m.activations = pa::activation_bytes_held() - held_before;
    m.temporaries = ctx.temporaries.peak_bytes();
    m.bf16_copies = math == pa::cpu::GemmMath::Bf16 ? ctx.bf16_gemms().copy_bytes() : 0;
    std::vector<int> const capacities(4, 40);
    auto cache = net.make_cache(capacities);
    m.kv_cache = std::size_t(cache.layers()) * 2 * std::size_t(cache.row(3) + 40) * std::size_t(cache.kv_width()) *
                 sizeof(float);
    return m;
}

/// Values of every weight a GEMM reads: the matrices, less an untied embedding table (only looked up).
template <class Model>
std::size_t gemm_weight_values() {
    pa::Sizing<pa::sizing::CpuEigenTarget>::Context ctx;  // the parameter list, without drawing any values
    pa::CausalLm<Model, pa::Sizing<pa::sizing::CpuEigenTarget>, float> net(ctx);
    std::string const table = std::string(Model::embedding_name) + ".weight";
    std::size_t values = 0;
    for (auto* p : net.parameters().parameters())
        if (p->rows > 1 && (Model::tied_head || p->name != table)) values += std::size_t(p->size());
    return values;
}

template <class Model>
void check_against_cpu(char const* name, pa::cpu::GemmMath math = pa::cpu::GemmMath::Fp32) {
    auto const o = training_only();
    auto const plan = pa::plan_memory<Model>(pa::Device::cpu(math), o);
    auto const real = measure_cpu<Model>(o, math);
    INFO(name << ": activations planned " << mib(plan.activations) << " MiB, measured " << mib(real.activations)
              << " MiB; temporaries planned " << mib(plan.temporaries) << " MiB, measured " << mib(real.temporaries)
              << " MiB");
    CHECK(close(plan.activations, real.activations));
    CHECK(close(plan.temporaries, real.temporaries));
    CHECK(plan.weights == real.weights);
    CHECK(plan.gradients == real.gradients);
    CHECK(plan.optimizer == real.optimizer);
    CHECK(plan.bf16_copies == real.bf16_copies);
    if (math == pa::cpu::GemmMath::Bf16) CHECK(plan.bf16_copies > 0);
    CHECK(plan.workspace == 0);
    CHECK(plan.attention_state_cols == seq);
    CHECK(plan.training_peak >= plan.weights + plan.gradients + plan.optimizer + plan.activations + plan.temporaries);

    auto decoding = o;
    decoding.decode_batch = 1;
    decoding.beams = 4;
    decoding.prompt_tokens = 24;
    decoding.new_tokens = 16;  // 4 slots of 40 positions, as measure_cpu's cache
    auto const decoded = pa::plan_memory<Model>(pa::Device::cpu(math), decoding);
    CHECK(decoded.kv_cache == real.kv_cache);
    CHECK(decoded.decoding_peak >= plan.steady_peak + decoded.kv_cache);
    CHECK(decoded.peak == std::max(decoded.training_peak, decoded.decoding_peak));
}

/// The bf16 working copies: 2 bytes per value of every weight a GEMM reads, on Cuda in GemmMath::Bf16 only.
template <class Model>
void check_bf16_copies() {
    auto const o = training_only();
    auto const bf16 = pa::plan_memory<Model>(pa::Device::gpu(), o);
    auto const fp32 =
        pa::plan_memory<Model>(pa::Device::gpu(pa::cuda::AttentionKernel::Gemm, pa::cuda::GemmMath::Fp32), o);
    CHECK(bf16.bf16_copies == 2 * gemm_weight_values<Model>());
    CHECK(fp32.bf16_copies == 0);
    CHECK(bf16.workspace == pa::cuda::default_workspace_bytes);
    CHECK(bf16.peak >= bf16.weights + bf16.bf16_copies + bf16.workspace);
}

}  // namespace

TEST_CASE("the CPU plan holds what a real CpuEigen step holds", "[memory_plan]") {
    check_against_cpu<BloomMini>("bloom-mini full");
    check_against_cpu<BloomMiniLora>("bloom-mini lora");
    check_against_cpu<Pythia70m>("pythia-70m full");
    check_against_cpu<Pythia70mLora>("pythia-70m lora");
    check_against_cpu<LlamaTiny>("llama-tiny full");
    check_against_cpu<LlamaTinyLora>("llama-tiny lora");
}

TEST_CASE("a rank's plan under ZeRO-1 holds its shard of AdamW's moments, and the rest as one rank", "[memory_plan]") {
    auto const o = training_only();
    auto const one = pa::plan_memory<BloomMini>(pa::Device::cpu(), o);
    auto replicated_options = o;
    replicated_options.ranks = 3;
    auto const replicated = pa::plan_memory<BloomMini>(pa::Device::cpu(), replicated_options);
    auto zero1_options = replicated_options;
    zero1_options.sharding = pa::distributed::OptimizerSharding::Zero1;
    auto const zero1 = pa::plan_memory<BloomMini>(pa::Device::cpu(), zero1_options);

    CHECK(replicated.optimizer == one.optimizer);
    CHECK(replicated.peak == one.peak);
    CHECK(replicated.ranks == "rank 0 of 3, replicated");
    CHECK(zero1.ranks == "rank 0 of 3, ZeRO-1");
    auto const shard = pa::distributed::shard_of(one.trainable_parameters, 3, 0);  // rank 0's, the largest
    CHECK(zero1.optimizer == 2 * std::size_t(shard.count) * sizeof(float));
    CHECK(zero1.weights == one.weights);
    CHECK(zero1.gradients == one.gradients);  // ZeRO-1 keeps the whole gradient arena
    CHECK(zero1.activations == one.activations);
    CHECK(zero1.peak < one.peak);
    CHECK(zero1.peak >= one.peak - (one.optimizer - zero1.optimizer));
}

TEST_CASE("on Cuda, Auto runs flash at head_dim 64 in Bf16 and keeps 2 floats per query row", "[memory_plan]") {
    auto const o = training_only();
    auto const flash = pa::plan_memory<Pythia70mLora>(pa::Device::gpu(), o);
    auto const gemm = pa::plan_memory<Pythia70mLora>(pa::Device::gpu(pa::cuda::AttentionKernel::Gemm), o);
    auto const fp32 = pa::plan_memory<Pythia70mLora>(
        pa::Device::gpu(pa::cuda::AttentionKernel::Auto, pa::cuda::GemmMath::Fp32), o);
    auto const cpu = pa::plan_memory<Pythia70mLora>(pa::Device::cpu(), o);
    using C = pa::gpt_neox::Size70m;
    CHECK(flash.attention == "flash");
    CHECK(flash.attention_state_cols == 2);
    CHECK(gemm.attention == "gemm");
    CHECK(gemm.attention_state_cols == seq);
    CHECK(fp32.attention == "gemm");  // Auto picks flash only for bf16 GEMMs
    // Every layer keeps (batch*heads*seq, 2) instead of (batch*heads*seq, seq).
    std::size_t const state_rows = std::size_t(micro_batch) * C::heads * seq;
    CHECK(gemm.activations - flash.activations == std::size_t(C::layers) * state_rows * (seq - 2) * sizeof(float));
    // The CPU keeps the probabilities, as the GEMM path does; its LM head chunk (fewer rows) keeps a smaller copy
    // of the hidden rows only when the chunk is cut, which it is not at this batch.
    CHECK(cpu.activations == gemm.activations);
    // The stack peaks in the LM head's training chunk: dh (N, D), then the chunk's logits (scored, V) and dhc
    // (scored, D), and on Cuda the logits' gradient beside them, bf16 in Bf16, fp32 in the other maths. (The CPU
    // overwrites the logits with their gradient; its peak is the evaluation's chunk of all N rows.)
    std::size_t const n = std::size_t(micro_batch) * seq, scored = std::size_t(micro_batch) * (seq - 1);
    auto const rounded = [](std::size_t bytes) { return (bytes + 255) / 256 * 256; };
    std::size_t const chunk =
        rounded(n * C::hidden * 4) + rounded(scored * C::vocab * 4) + rounded(scored * C::hidden * 4);
    CHECK(flash.temporaries == chunk + rounded(scored * C::vocab * 2));
    CHECK(fp32.temporaries == chunk + rounded(scored * C::vocab * 4));
    CHECK(cpu.temporaries == rounded(n * C::vocab * 4));
}

TEST_CASE("the CPU plan in bf16 GEMMs holds what a real CpuEigen step in bf16 holds", "[memory_plan]") {
    if (!pa::cpu::bf16_gemms_runnable()) {
        WARN("no bf16 matmul here (" << pa::cpu::bf16_gemms_missing() << "): nothing to check");
        return;
    }
    auto const bf16 = pa::cpu::GemmMath::Bf16;
    check_against_cpu<BloomMini>("bloom-mini full, bf16", bf16);  // tied head: the table has a working copy
    check_against_cpu<Pythia70mLora>("pythia-70m lora, bf16", bf16);  // rank 8: the adapters stay fp32
    check_against_cpu<LlamaTiny>("llama-tiny full, bf16", bf16);
}

TEST_CASE("on Cuda in Bf16 every GEMM weight has a bf16 working copy", "[memory_plan]") {
    check_bf16_copies<BloomMiniLora>();  // tied head: the embedding table is the head's GEMM weight
    check_bf16_copies<Pythia70m>();      // untied: the embedding table is only looked up
    check_bf16_copies<LlamaTinyLora>();
}

TEST_CASE("the dry run leaves its ledger empty and never hands out an address twice", "[memory_plan]") {
    pa::Sizing<pa::sizing::CudaTarget>::Context ctx;
    auto& ledger = ctx.ledger();
    std::size_t const own = ledger.current();
    CHECK(own == pa::cuda::default_workspace_bytes);
    {
        pa::CausalLm<LlamaTinyLora, pa::Sizing<pa::sizing::CudaTarget>, float> net(ctx, {.adapter_dropout = 0.1});
        pa::AdamW<pa::Sizing<pa::sizing::CudaTarget>, float> optimizer(net.parameters().trainable_count());
        auto const batch = pa::worst_case_batch(pa::llama::SizeTiny::vocab, 3, 17);
        pa::train_step(ctx, net, optimizer, std::span<pa::TokenBatch const>(&batch, 1), 1e-4, 1.0, 1);
        std::set<float const*> addresses;
        for (auto* p : net.parameters().parameters()) {
            CHECK(p->value != nullptr);
            CHECK(addresses.insert(p->value).second);
        }
        CHECK(ledger.current() > own);
    }
    CHECK(ledger.current() == own + ctx.scratch_bytes() + ctx.bf16_copy_bytes() + ctx.temporaries.reserved_bytes());
    pa::sizing::Ledger alone;
    void* a = alone.allocate(100, pa::sizing::Pool::Buffers);
    void* b = alone.allocate(0, pa::sizing::Pool::Buffers);
    CHECK(a != b);
    CHECK(alone.peak() == 100);
    alone.release(a);
    alone.release(b);
    CHECK(alone.current() == 0);
    CHECK(alone.live_allocations() == 0);
}

TEST_CASE("BLOOM-560m at 4 x 512 fits where the H100 measured it", "[memory_plan]") {
    pa::MemoryPlanOptions o;  // 4 x 512, LoRA dropout 0.05
    o.decode_batch = 0;
    using Lora = pa::Bloom<pa::bloom::Size560m, QkvLora>;
    auto const flash = pa::plan_memory<Lora>(pa::Device::gpu(), o);
    auto const gemm = pa::plan_memory<Lora>(pa::Device::gpu(pa::cuda::AttentionKernel::Gemm), o);
    // bench/README.md, H100: 6.27 GiB (flash) and 7.89 GiB (GEMM), sampled between steps.
    double const gib = double(1 << 30);
    CHECK(double(flash.steady_peak) / gib == Approx(6.27).epsilon(0.05));
    INFO(flash.table() << gemm.table());
    CHECK(double(gemm.steady_peak) / gib == Approx(7.89).epsilon(0.05));
}
