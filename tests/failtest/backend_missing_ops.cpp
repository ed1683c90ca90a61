// A backend policy whose ops are not written yet: CausalLm says, one sentence per group of ops, what it lacks
// (backend/contract.hpp), instead of errors from inside the layers.
#include <polyalpaca/backend/cpu_eigen.hpp>
#include <polyalpaca/models/bloom.hpp>
#include <polyalpaca/models/causal_lm.hpp>

#include <cstddef>
#include <vector>

namespace pa = polyalpaca;

namespace started {
/// Everything a backend policy holds besides its ops, as a new backend starts out.
struct Backend {
    struct Context {};
    static constexpr char const* name = "started";
    static constexpr std::int64_t lm_head_chunk_logits = std::int64_t(1) << 20;
    template <class T>
    using Buffer = std::vector<T>;
    template <class T>
    static void upload(Context&, T const*, T*, std::size_t) {}
    template <class T>
    static void download(Context&, T const*, T*, std::size_t) {}
    template <class T>
    static void fill_zero(Context&, T*, std::size_t) {}
    template <class T>
    static void copy(Context&, T const*, T*, std::size_t) {}
    static void synchronize(Context&) {}
};
}  // namespace started

#ifdef POLYALPACA_FAILTEST_OK
using Backend = pa::CpuEigen;
#else
using Backend = started::Backend;
#endif

static_assert(sizeof(pa::CausalLm<pa::Bloom<pa::bloom::SizeTiny>, Backend, float>) > 0);
