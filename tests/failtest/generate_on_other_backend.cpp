// generate() takes the Context of the network's backend.
#include <polyalpaca/backend/cpu_eigen.hpp>
#include <polyalpaca/generate/generate.hpp>
#include <polyalpaca/models/causal_lm.hpp>
#include <polyalpaca/models/llama.hpp>

#include <cstdint>
#include <vector>

namespace pa = polyalpaca;

struct OtherContext {};
#ifdef POLYALPACA_FAILTEST_OK
using Context = pa::cpu::Context;
#else
using Context = OtherContext;
#endif

std::size_t run(Context& ctx, pa::CausalLm<pa::Llama<pa::llama::SizeTiny>, pa::CpuEigen, float>& net) {
    std::vector<std::vector<std::int32_t>> const prompts{{1, 2}};
    return pa::generate(ctx, net, prompts, pa::GenerationConfig::greedy(4)).size();
}
