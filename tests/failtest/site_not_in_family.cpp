// A LoRA site must be a projection the family has: BLOOM has no gate_proj.
#include <polyalpaca/models/bloom.hpp>  // only what the check needs: the compile-fail tests parse fast

namespace pa = polyalpaca;
#ifdef POLYALPACA_FAILTEST_OK
using Model = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<8, 16, pa::site::Qkv, pa::site::MlpDown>>;
#else
using Model = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<8, 16, pa::site::Qkv, pa::site::MlpGate>>;
#endif

static_assert(Model::parameter_count > 0);
