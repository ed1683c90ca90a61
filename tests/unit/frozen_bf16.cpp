// Frozen weights kept in bf16 only (backend/cuda/frozen_bf16.cuh), what can be checked without a GPU: the
// store's repack_frozen keeps the weights it is told to keep, values and all, in a smaller arena and hands every
// other frozen weight over; the rule picks the frozen matrices but the embedding table; and the CUDA memory plan
// of a LoRA network keeps those matrices in 2 bytes a value instead of 4 plus a 2-byte working copy.
// tests/cuda/frozen_bf16.cu checks on a GPU that the results do not change.
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/backend/cuda/op_memory.hpp>
#include <polyalpaca/train/memory_plan.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace pa = polyalpaca;

namespace {

using BloomMiniLora = pa::Bloom<pa::bloom::SizeMini, pa::LoRA<8, 16, pa::site::Qkv>>;
using LlamaTinyLora = pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;

template <class Model>
std::string table_name() {
    return std::string(Model::embedding_name) + ".weight";
}

}  // namespace

TEMPLATE_TEST_CASE("repack_frozen keeps the chosen frozen weights and hands over the rest", "[frozen_bf16]",
                   BloomMiniLora, LlamaTinyLora) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> net(ctx, {.seed = 3});
    auto& store = net.parameters();
    std::map<std::string, std::vector<float>> before;
    for (auto const* p : store.parameters()) before[p->name].assign(p->value, p->value + p->size());
    auto const frozen = store.frozen_count(), trainable = store.trainable_count();
    auto const table = table_name<TestType>();

    std::set<std::string> handed_over, expected;
    pa::Index moved = 0;
    for (auto const* p : store.parameters())
        if (pa::cuda::kept_in_bf16_only(*p, table)) expected.insert(p->name), moved += p->size();
    auto const kept = store.repack_frozen(
        ctx, [&](pa::Parameter<float> const& p) { return !pa::cuda::kept_in_bf16_only(p, table); },
        [&](pa::Parameter<float>& p) {
            handed_over.insert(p.name);
            REQUIRE(std::vector<float>(p.value, p.value + p.size()) == before.at(p.name));  // still there
            p.value = nullptr;
        });

    CHECK(handed_over == expected);
    CHECK(!expected.empty());
    CHECK(expected.count(table) == 0);
    for (auto const& name : expected) CHECK(name.find("lora") == std::string::npos);  // adapters train
    CHECK(kept == frozen - moved);
    CHECK(store.frozen_count() == frozen);  // every frozen weight still counts, wherever it lives
    CHECK(store.trainable_count() == trainable);
    for (auto const* p : store.parameters()) {
        if (handed_over.count(p->name)) continue;
        INFO(p->name);
        CHECK(std::vector<float>(p->value, p->value + p->size()) == before.at(p->name));
    }
}

TEMPLATE_TEST_CASE("a CUDA LoRA plan keeps the frozen matrices in bf16 only", "[frozen_bf16]", BloomMiniLora,
                   LlamaTinyLora) {
    pa::MemoryPlanOptions o;
    o.micro_batch = 2, o.seq = 32, o.decode_batch = 0;
    auto const fp32 = pa::plan_memory<TestType>(pa::Device::gpu(), o);
    o.frozen_in_bf16 = true;
    auto const bf16 = pa::plan_memory<TestType>(pa::Device::gpu(), o);

    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> net(ctx, {.seed = 0});
    std::size_t moved = 0, padded = 0;
    for (auto const* p : net.parameters().parameters())
        if (pa::cuda::kept_in_bf16_only(*p, table_name<TestType>())) {
            moved += std::size_t(p->size());
            padded += pa::cuda::frozen_bf16_padded(std::size_t(p->size()));
        }
    REQUIRE(moved > 0);
    CHECK(fp32.frozen_bf16 == 0);
    CHECK(bf16.weights == fp32.weights - moved * sizeof(float));  // out of the fp32 arena
    CHECK(bf16.frozen_bf16 == padded * 2);                        // into bf16, each weight 256-byte aligned
    CHECK(bf16.bf16_copies == fp32.bf16_copies - moved * 2);      // no working copy of their own
    CHECK(bf16.parameters == fp32.parameters);
    CHECK(bf16.peak < fp32.peak);
    // The CPU keeps its fp32 path: the option does nothing there.
    auto const cpu = pa::plan_memory<TestType>(pa::Device::cpu(), o);
    CHECK(cpu.frozen_bf16 == 0);
}
