// LoRA's rank may not exceed min(in_features, out_features) of an adapted projection (tiny BLOOM: 32).
#include <polyalpaca/backend/cpu_eigen.hpp>
#include <polyalpaca/models/bloom.hpp>
#include <polyalpaca/models/causal_lm.hpp>

namespace pa = polyalpaca;
#ifdef POLYALPACA_FAILTEST_OK
using Model = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<32, 16, pa::site::Qkv>>;
#else
using Model = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<64, 16, pa::site::Qkv>>;
#endif

void build(pa::cpu::Context& ctx) { pa::CausalLm<Model, pa::CpuEigen, float> net(ctx); }
