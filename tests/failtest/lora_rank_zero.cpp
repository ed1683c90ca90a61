// LoRA's rank must be positive.
#include <polyalpaca/models/bloom.hpp>  // only what the check needs: the compile-fail tests parse fast

namespace pa = polyalpaca;
#ifdef POLYALPACA_FAILTEST_OK
using Adapter = pa::LoRA<1, 16, pa::site::Qkv>;
#else
using Adapter = pa::LoRA<0, 16, pa::site::Qkv>;
#endif

static_assert(pa::Bloom<pa::bloom::SizeTiny, Adapter>::parameter_count > 0);
