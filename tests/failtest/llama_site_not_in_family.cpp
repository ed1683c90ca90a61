// A LoRA site must be a projection the family has: LLaMA has no fused query_key_value.
#include <polyalpaca/models/llama.hpp>  // only what the check needs: the compile-fail tests parse fast

namespace pa = polyalpaca;
#ifdef POLYALPACA_FAILTEST_OK
using Model = pa::Llama<pa::llama::SizeTiny, pa::LoRA<8, 16, pa::site::Query, pa::site::Value>>;
#else
using Model = pa::Llama<pa::llama::SizeTiny, pa::LoRA<8, 16, pa::site::Qkv>>;
#endif

static_assert(Model::parameter_count > 0);
