/// @file generate/generate.hpp
/// @brief generate(): incremental decoding with a KV cache for a batch of prompts: greedy, sampling, beam search.
///
/// Every sequence (every beam) has its own cache slot, with its own positions from 0 (layers/kv_cache.hpp):
/// prompts of different lengths are batched without padding, so a batch gives what each prompt gives alone.
/// Greedy and beam search follow HF transformers' generate() token for token; sampled tokens come from
/// core/rng.hpp seeded with config.seed and the prompt's index, not from torch's stream.
/// The network runs on any backend: on the host (CpuEigen) its logits are read where it writes them; on a device
/// (Cuda) they are written into device memory and downloaded after each forward (HostLogits).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/tensor.hpp"
#include "polyalpaca/generate/beam_search.hpp"
#include "polyalpaca/generate/config.hpp"
#include "polyalpaca/generate/prefill.hpp"
#include "polyalpaca/generate/processors.hpp"
#include "polyalpaca/layers/kv_cache.hpp"

namespace polyalpaca {

/// The result for one prompt.
struct Generated {
    /// New tokens only (no prompt). A final end-of-sequence token is not included; stopped_at_eos says it came.
    std::vector<std::int32_t> tokens;
    /// Beam search: HF's sequences_scores (sum log p / new_tokens^length_penalty, the end-of-sequence token
    /// counted). Greedy and sampling: the sum of log p of the chosen tokens (end-of-sequence included) under the
    /// processed distribution they were chosen from.
    double score = 0;
    bool stopped_at_eos = false;
};

/// Counters generate() keeps up to date; on_step (when set) is called after the prefill and after each step.
struct GenerationProgress {
    std::function<void(GenerationProgress const&)> on_step;
    int step = 0;                      ///< decoding steps done (tokens generated per running sequence)
    int max_steps = 0;                 ///< max_new_tokens
    int running = 0;                   ///< sequences (beams) still decoding
    std::int64_t prompt_tokens = 0;    ///< tokens run through the network in the prefill
    std::int64_t decoded_tokens = 0;   ///< tokens run through the network one at a time since
    double prefill_seconds = 0;
    double decode_seconds = 0;         ///< the steps after the prefill, token choice included
};

namespace generation {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline void report(GenerationProgress* progress) {
    if (progress && progress->on_step) progress->on_step(*progress);
}

/// net.forward_cached with the (steps, vocab) logits in host memory. A network on the host writes them there; one
/// on a device writes them into a device buffer, kept and grown across calls, which is then downloaded.
template <class Net>
class HostLogits {
public:
    using T = typename Net::Scalar;
    using Backend = typename Net::BackendType;
    static constexpr bool on_host = std::is_same_v<typename Backend::Context, cpu::Context>;

    RowMajorMatrix<T> const& run(typename Backend::Context& ctx, Net& net, typename Net::Cache& cache,
                                 std::span<CacheStep const> steps, std::span<std::int32_t const> ids) {
        host_.resize(Index(steps.size()), Net::vocab);
        forward_into_rows(ctx, net, cache, steps, ids, 0);
        return host_;
    }

    /// run() over whole prompts in calls of at most prefill_call_tokens tokens (a longer prompt runs alone), the
    /// logits of every call stacked in the order of `steps`.
    RowMajorMatrix<T> const& prefill(typename Backend::Context& ctx, Net& net, typename Net::Cache& cache,
                                     std::span<CacheStep const> steps, std::span<std::int32_t const> ids) {
        host_.resize(Index(steps.size()), Net::vocab);
        for_each_prefill_call(steps, ids, [&](auto call_steps, auto call_ids, std::size_t first) {
            forward_into_rows(ctx, net, cache, call_steps, call_ids, Index(first));
        });
        return host_;
    }

private:
    // The logits of `steps` into host_ rows [row, row + steps.size()).
    void forward_into_rows(typename Backend::Context& ctx, Net& net, typename Net::Cache& cache,
                           std::span<CacheStep const> steps, std::span<std::int32_t const> ids, Index row) {
        Index const rows = Index(steps.size());
        T* const out = host_.data() + row * Net::vocab;
        if constexpr (on_host) {
            net.forward_cached(ctx, cache, steps, ids, View<T>(out, rows, Net::vocab));
        } else {
            std::size_t const n = std::size_t(rows * Net::vocab);
            if (device_.size() < n) device_ = typename Backend::template Buffer<T>(n);
            net.forward_cached(ctx, cache, steps, ids, View<T>(device_.data(), rows, Net::vocab));
            Backend::download(ctx, device_.data(), out, n);
        }
    }

    RowMajorMatrix<T> host_;
    typename Backend::template Buffer<T> device_;  // device backends only
};

/// Row `row` of host logits (rows, vocab) as doubles.
template <class T>
std::vector<double> scores_of(RowMajorMatrix<T> const& logits, Index row) {
    std::vector<double> out(std::size_t(logits.cols()));
    for (Index v = 0; v < logits.cols(); ++v) out[std::size_t(v)] = double(logits(row, v));
    return out;
}

inline bool is_eos(GenerationConfig const& config, std::int32_t token) {
    return std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), token) != config.eos_token_ids.end();
}

/// Samples an index from the probabilities of log-probabilities `log_probs`.
inline std::int32_t sample(std::span<double const> log_probs, Rng& rng) {
    double const u = rng.uniform();
    double cumulative = 0;
    std::int32_t last = -1;
    for (std::size_t i = 0; i < log_probs.size(); ++i) {
        if (log_probs[i] == minus_infinity) continue;
        cumulative += std::exp(log_probs[i]);
        last = std::int32_t(i);
        if (u < cumulative) return last;
    }
    return last;  // u beyond the rounded total: the last token with any probability
}

/// Greedy or sampling: one slot per prompt.
template <class Net, class Context>
std::vector<Generated> generate_single(Context& ctx, Net& net, std::span<std::vector<std::int32_t> const> prompts,
                                       GenerationConfig const& config, GenerationProgress* progress) {
    using T = typename Net::Scalar;
    std::size_t const n = prompts.size();
    std::vector<Generated> out(n);
    std::vector<std::vector<std::int32_t>> history(prompts.begin(), prompts.end());
    std::vector<int> capacities;
    std::vector<CacheStep> steps;
    std::vector<std::int32_t> ids;
    std::vector<Rng> rngs;
    for (std::size_t i = 0; i < n; ++i) {
        capacities.push_back(int(prompts[i].size()) + config.max_new_tokens);
        steps.push_back({int(i), int(prompts[i].size())});
        ids.insert(ids.end(), prompts[i].begin(), prompts[i].end());
        rngs.emplace_back(config.seed + 0x9e3779b97f4a7c15ull * (std::uint64_t(i) + 1));
    }
    auto cache = net.make_cache(capacities);
    auto t0 = Clock::now();
    HostLogits<Net> head;
    RowMajorMatrix<T> const& logits = head.prefill(ctx, net, cache, steps, ids);  // (active sequences, vocab)
    std::vector<int> active(n);  // active[r]: the prompt of logits row r
    std::iota(active.begin(), active.end(), 0);
    if (progress) {
        progress->prompt_tokens += Index(ids.size());
        progress->prefill_seconds += seconds_since(t0);
        progress->max_steps = config.max_new_tokens;
        progress->running = int(n);
        report(progress);
    }
    t0 = Clock::now();
    for (int step = 0; step < config.max_new_tokens && !active.empty(); ++step) {
        std::vector<int> still;
        steps.clear();
        ids.clear();
        for (std::size_t r = 0; r < active.size(); ++r) {
            int const i = active[r];
            auto scores = scores_of(logits, Index(r));
            process(scores, history[std::size_t(i)], config);
            log_softmax(scores);
            std::int32_t const token = config.do_sample ? sample(scores, rngs[std::size_t(i)]) : argmax(scores);
            auto& g = out[std::size_t(i)];
            g.score += scores[std::size_t(token)];
            history[std::size_t(i)].push_back(token);
            if (is_eos(config, token)) {
                g.stopped_at_eos = true;
                continue;
            }
            g.tokens.push_back(token);
            if (step + 1 == config.max_new_tokens) continue;
            still.push_back(i);
            steps.push_back({i, 1});
            ids.push_back(token);
        }
        active = std::move(still);
        if (!active.empty()) head.run(ctx, net, cache, steps, ids);
        if (progress) {
            progress->step = step + 1;
            progress->running = int(active.size());
            progress->decoded_tokens += Index(ids.size());
            progress->decode_seconds += seconds_since(t0);
            t0 = Clock::now();
            report(progress);
        }
    }
    return out;
}

/// Beam search: num_beams slots per prompt, reordered after every step.
template <class Net, class Context>
std::vector<Generated> generate_beams(Context& ctx, Net& net, std::span<std::vector<std::int32_t> const> prompts,
                                      GenerationConfig const& config, GenerationProgress* progress) {
    using T = typename Net::Scalar;
    std::size_t const n = prompts.size();
    int const beams = config.num_beams;
    std::vector<int> capacities;
    std::vector<CacheStep> steps;
    std::vector<std::int32_t> ids;
    std::vector<BeamSearch> searches;
    for (std::size_t i = 0; i < n; ++i) {
        for (int b = 0; b < beams; ++b) capacities.push_back(int(prompts[i].size()) + config.max_new_tokens);
        steps.push_back({int(i) * beams, int(prompts[i].size())});
        ids.insert(ids.end(), prompts[i].begin(), prompts[i].end());
        searches.emplace_back(config, Net::vocab);
    }
    auto cache = net.make_cache(capacities);
    auto t0 = Clock::now();
    HostLogits<Net> head;
    RowMajorMatrix<T> const& prompt_logits = head.prefill(ctx, net, cache, steps, ids);  // (prompts, vocab)
    std::vector<int> src, dst;  // every beam starts from its prompt's cache
    for (std::size_t i = 0; i < n; ++i)
        for (int b = 1; b < beams; ++b) {
            src.push_back(int(i) * beams);
            dst.push_back(int(i) * beams + b);
        }
    cache.reorder(ctx, src, dst);
    RowMajorMatrix<T> first_logits(Index(n) * beams, Net::vocab);  // every beam starts from its prompt's logits
    for (std::size_t i = 0; i < n; ++i)
        for (int b = 0; b < beams; ++b) first_logits.row(Index(i) * beams + b) = prompt_logits.row(Index(i));
    RowMajorMatrix<T> const* logits = &first_logits;  // (running prompts * beams, vocab)
    std::vector<int> active(n);  // active[a]: the prompt of logits rows a * beams ..
    std::iota(active.begin(), active.end(), 0);
    if (progress) {
        progress->prompt_tokens += Index(ids.size());
        progress->prefill_seconds += seconds_since(t0);
        progress->max_steps = config.max_new_tokens;
        progress->running = int(n) * beams;
        report(progress);
    }
    t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        if (searches[i].done()) active.erase(std::find(active.begin(), active.end(), int(i)));
    std::vector<double> scores(std::size_t(beams) * Net::vocab);  // (beams, vocab)
    while (!active.empty()) {
        std::vector<int> still;
        steps.clear();
        ids.clear();
        src.clear();
        dst.clear();
        for (std::size_t a = 0; a < active.size(); ++a) {
            int const i = active[a];
            auto& search = searches[std::size_t(i)];
            for (int b = 0; b < beams; ++b) {
                auto row = scores_of(*logits, Index(a) * beams + b);
                log_softmax(row);
                std::vector<std::int32_t> history = prompts[std::size_t(i)];
                auto const& made = search.running(b).tokens;
                history.insert(history.end(), made.begin(), made.end());
                process(row, history, config);
                std::copy(row.begin(), row.end(), scores.begin() + std::ptrdiff_t(b) * Net::vocab);
            }
            auto const choices = search.step(scores);
            if (search.done()) continue;
            still.push_back(i);
            for (int b = 0; b < beams; ++b) {
                src.push_back(i * beams + choices[std::size_t(b)].source);
                dst.push_back(i * beams + b);
                steps.push_back({i * beams + b, 1});
                ids.push_back(choices[std::size_t(b)].token);
            }
        }
        active = std::move(still);
        if (!active.empty()) {
            cache.reorder(ctx, src, dst);
            logits = &head.run(ctx, net, cache, steps, ids);
        }
        if (progress) {
            progress->step += 1;
            progress->running = int(active.size()) * beams;
            progress->decoded_tokens += Index(ids.size());
            progress->decode_seconds += seconds_since(t0);
            t0 = Clock::now();
            report(progress);
        }
    }
    std::vector<Generated> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (config.max_new_tokens == 0) continue;
        auto const& best = searches[i].finished()[0];
        out[i].tokens = best.tokens;
        out[i].score = best.score;
        if (!best.tokens.empty() && is_eos(config, best.tokens.back())) {
            out[i].tokens.pop_back();
            out[i].stopped_at_eos = true;
        }
    }
    return out;
}

}  // namespace generation

/// Generates a continuation of every prompt (token ids, at least one each) with `net`, a CausalLm on any backend
/// with that backend's context, in one batch: greedy (num_beams 1, do_sample false), sampling (do_sample) or beam
/// search (num_beams > 1). Token choice runs on the host, from each step's downloaded logits.
template <class Net, class Context>
std::vector<Generated> generate(Context& ctx, Net& net, std::span<std::vector<std::int32_t> const> prompts,
                                GenerationConfig const& config, GenerationProgress* progress = nullptr) {
    static_assert(std::is_same_v<Context, typename Net::BackendType::Context>,
                  "generate() needs the Context of the network's backend");
    validate(config, Net::vocab);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        require(!prompts[i].empty(), "generate: prompt ", i, " is empty; it needs at least one token");
        for (std::size_t p = 0; p < prompts[i].size(); ++p)
            require(prompts[i][p] >= 0 && prompts[i][p] < Net::vocab, "generate: prompt ", i, " has token ",
                    prompts[i][p], " at position ", p, ", outside the vocabulary [0, ", Net::vocab, ")");
    }
    if (prompts.empty()) return {};
    if (config.num_beams > 1) return generation::generate_beams(ctx, net, prompts, config, progress);
    return generation::generate_single(ctx, net, prompts, config, progress);
}

}  // namespace polyalpaca
