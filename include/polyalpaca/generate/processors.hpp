/// @file generate/processors.hpp
/// @brief Logits processors as HF transformers defines them (repetition penalty, no-repeat n-gram,
///        temperature, top-k, top-p), applied in HF's order, and the softmax helpers decoding needs.
///
/// Each works on the scores of one sequence (vocab) in double, given its history: the prompt followed by the
/// tokens generated so far. A banned or filtered token gets -infinity.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/generate/config.hpp"

namespace polyalpaca::generation {

inline constexpr double minus_infinity = -std::numeric_limits<double>::infinity();

/// HF RepetitionPenaltyLogitsProcessor: every distinct token of the history has its score s replaced by
/// s * penalty where s < 0 and s / penalty otherwise (so a penalty > 1 always makes it less likely).
inline void repetition_penalty(std::span<double> scores, std::span<std::int32_t const> history, double penalty) {
    if (penalty == 1.0) return;
    std::vector<bool> done(scores.size(), false);
    for (std::size_t i = 0; i < history.size(); ++i) {
        auto const t = history[i];
        require(t >= 0 && std::size_t(t) < scores.size(), "repetition_penalty: token ", t, " at history position ",
                i, " is outside the vocabulary [0, ", scores.size(), ")");
        if (done[std::size_t(t)]) continue;
        done[std::size_t(t)] = true;
        double& s = scores[std::size_t(t)];
        s = s < 0 ? s * penalty : s / penalty;
    }
}

/// HF NoRepeatNGramLogitsProcessor: with L = history length, once L + 1 >= n, bans every token that would
/// complete an n-gram already in the history, i.e. the token after each earlier occurrence of the last n - 1
/// tokens (n = 1 bans every token of the history).
inline void no_repeat_ngram(std::span<double> scores, std::span<std::int32_t const> history, int n) {
    if (n <= 0) return;
    std::size_t const len = history.size();
    std::size_t const size = std::size_t(n);
    if (len + 1 < size) return;
    auto const prefix = history.subspan(len + 1 - size);  // the last n - 1 tokens
    for (std::size_t start = 0; start + size <= len; ++start) {
        if (!std::equal(prefix.begin(), prefix.end(), history.begin() + std::ptrdiff_t(start))) continue;
        auto const banned = history[start + size - 1];
        require(banned >= 0 && std::size_t(banned) < scores.size(), "no_repeat_ngram: token ", banned,
                " is outside the vocabulary [0, ", scores.size(), ")");
        scores[std::size_t(banned)] = minus_infinity;
    }
}

/// HF TemperatureLogitsWarper: scores / temperature.
inline void temperature(std::span<double> scores, double t) {
    require(t > 0, "temperature: must be positive, got ", t);
    if (t == 1.0) return;
    for (double& s : scores) s /= t;
}

/// HF TopKLogitsWarper: keeps the scores >= the k-th largest (ties with it kept), k clamped to [1, vocab];
/// k = 0 leaves the scores as they are.
inline void top_k(std::span<double> scores, int k) {
    require(k >= 0, "top_k: must not be negative, got ", k);
    if (k == 0 || scores.empty()) return;
    std::size_t const kk = std::min(std::size_t(k), scores.size());
    std::vector<double> sorted(scores.begin(), scores.end());
    std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(kk - 1), sorted.end(), std::greater<>());
    double const threshold = sorted[kk - 1];
    for (double& s : scores)
        if (s < threshold) s = minus_infinity;
}

/// HF TopPLogitsWarper: with the tokens in ascending order of score (ties by id), removes every token whose
/// cumulative probability is <= 1 - p; the most likely token always stays. p = 1 leaves the scores as they are.
inline void top_p(std::span<double> scores, double p) {
    require(p > 0 && p <= 1, "top_p: must be in (0, 1], got ", p);
    if (p >= 1.0 || scores.empty()) return;
    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    double const top = scores[order.back()];
    double total = 0;
    for (double s : scores) total += std::exp(s - top);
    double cumulative = 0;
    for (std::size_t i = 0; i + 1 < order.size(); ++i) {  // the last (most likely) token is always kept
        cumulative += std::exp(scores[order[i]] - top) / total;
        if (cumulative <= 1 - p) scores[order[i]] = minus_infinity;
    }
}

/// log softmax in place; -infinity stays -infinity. Throws when every score is -infinity.
inline void log_softmax(std::span<double> scores) {
    double const top = *std::max_element(scores.begin(), scores.end());
    require(top > minus_infinity, "log_softmax: every token is banned (all scores are -infinity)");
    double total = 0;
    for (double s : scores) total += std::exp(s - top);
    double const log_total = top + std::log(total);
    for (double& s : scores) s -= log_total;
}

/// The index of the first largest score (torch.argmax's choice on ties).
inline std::int32_t argmax(std::span<double const> scores) {
    return std::int32_t(std::max_element(scores.begin(), scores.end()) - scores.begin());
}

/// Applies the processors of `config` in HF's order: repetition penalty, no-repeat n-gram, then, when
/// sampling, temperature, top-k and top-p.
inline void process(std::span<double> scores, std::span<std::int32_t const> history, GenerationConfig const& config) {
    repetition_penalty(scores, history, config.repetition_penalty);
    no_repeat_ngram(scores, history, config.no_repeat_ngram_size);
    if (!config.do_sample) return;
    temperature(scores, config.temperature);
    top_k(scores, config.top_k);
    top_p(scores, config.top_p);
}

}  // namespace polyalpaca::generation
