/// @file generate/prefill.hpp
/// @brief How generate() splits the prompts' prefill into calls of the network (and the memory plan with it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/layers/kv_cache.hpp"

namespace polyalpaca {

/// Tokens a prefill call runs at most, unless one prompt alone is longer. The layers keep each activation at the size
/// of their largest call, so a prefill of all prompts at once held them at that size for the rest of the run: with
/// BLOOM-560m, 4 prompts of 32 tokens peaked at 110% of weights and KV cache, one prompt at 104%; in calls of 64
/// tokens, at 106% (docs/performance.md, "Prefill in calls of at most 64 tokens", with the prefill rates measured
/// after the split; its own cost in time was not measured apart).
inline constexpr int prefill_call_tokens = 64;

/// Calls f(steps, ids, first) for the prefill's calls: consecutive whole prompts of `steps` (first the index of the
/// call's first step) with at most prefill_call_tokens tokens together, a longer prompt alone.
template <class F>
void for_each_prefill_call(std::span<CacheStep const> steps, std::span<std::int32_t const> ids, F const& f) {
    std::size_t first = 0, first_id = 0;
    while (first < steps.size()) {
        std::size_t end = first + 1, tokens = std::size_t(steps[first].tokens);
        auto const fits = [&](CacheStep const& next) {
            return tokens + std::size_t(next.tokens) <= std::size_t(prefill_call_tokens);
        };
        for (; end < steps.size() && fits(steps[end]); ++end) tokens += std::size_t(steps[end].tokens);
        require(first_id + tokens <= ids.size(), "prefill: ", ids.size(), " ids for steps of more tokens");
        f(steps.subspan(first, end - first), ids.subspan(first_id, tokens), first);
        first = end;
        first_id += tokens;
    }
    require(first_id == ids.size(), "prefill: ", ids.size(), " ids for steps of ", first_id, " tokens");
}

}  // namespace polyalpaca
