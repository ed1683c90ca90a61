// Grouped-query attention: the number of kv heads must divide the number of attention heads.
#include <polyalpaca/models/llama.hpp>  // only what the check needs: the compile-fail tests parse fast

namespace pa = polyalpaca;
struct OddLlama : pa::llama::Defaults {
    static constexpr int vocab = 64, hidden = 32, layers = 1, heads = 4, ffn = 64;
#ifdef POLYALPACA_FAILTEST_OK
    static constexpr int kv_heads = 2;
#else
    static constexpr int kv_heads = 3;
#endif
};

static_assert(pa::Llama<OddLlama>::parameter_count > 0);
