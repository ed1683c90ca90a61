// The number of attention heads must divide the hidden size.
#include <polyalpaca/models/bloom.hpp>  // only what the check needs: the compile-fail tests parse fast

namespace pa = polyalpaca;
struct OddBloom : pa::bloom::Defaults {
    static constexpr int vocab = 64, layers = 1, heads = 4;
#ifdef POLYALPACA_FAILTEST_OK
    static constexpr int hidden = 32;
#else
    static constexpr int hidden = 30;
#endif
};

static_assert(pa::Bloom<OddBloom>::parameter_count > 0);
