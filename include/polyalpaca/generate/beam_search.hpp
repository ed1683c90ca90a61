/// @file generate/beam_search.hpp
/// @brief BeamSearch: the beam bookkeeping of one prompt, step for step as HF transformers' vectorised
///        `_beam_search` does it (running beams, finished hypotheses, length penalty, early stopping).
///
/// Each step takes the processed log-probabilities of every running beam and
///   1. adds each beam's running score and keeps the best K = max(2, 1 + #eos) * num_beams candidates;
///   2. a candidate "hits" when its token is an end-of-sequence id or it reaches max_new_tokens;
///   3. the next running beams are the best num_beams candidates that did not hit;
///   4. candidates among the first num_beams that hit become finished hypotheses scored
///      sum log p / new_tokens^length_penalty (new_tokens counting the end-of-sequence token), and the best
///      num_beams of the finished and these stay finished; none is added once early stopping says so;
///   5. the search is done when no running beam can improve the finished ones (early_stopping), or when every
///      candidate hit.
/// HF marks excluded entries with -1e9 in float32; the same constant is used here, in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/generate/config.hpp"

namespace polyalpaca::generation {

inline constexpr double beam_excluded = -1.0e9;

/// One hypothesis: the new tokens (an end-of-sequence token included where it ended one) and its score.
struct BeamHypothesis {
    std::vector<std::int32_t> tokens;
    double score = beam_excluded;
    bool finished = false;
};

class BeamSearch {
public:
    /// A new running beam: it continues running beam `source` with `token`.
    struct Choice {
        int source;
        std::int32_t token;
    };

    BeamSearch(GenerationConfig const& config, int vocab)
        : num_beams_(config.num_beams),
          vocab_(vocab),
          max_new_tokens_(config.max_new_tokens),
          length_penalty_(config.length_penalty),
          early_stopping_(config.early_stopping),
          eos_(config.eos_token_ids),
          keep_(std::min(std::max(2, 1 + int(config.eos_token_ids.size())) * config.num_beams,
                         config.num_beams * vocab)),
          running_(std::size_t(config.num_beams)),
          finished_(std::size_t(config.num_beams)) {
        require(num_beams_ >= 1 && vocab_ >= 1, "BeamSearch: num_beams (", num_beams_, ") and vocab (", vocab_,
                ") must be positive");
        require(keep_ >= num_beams_, "BeamSearch: ", num_beams_, " beams need at least ", num_beams_,
                " candidates, the vocabulary gives ", keep_);
        // Every beam starts from the same prompt: only beam 0 may spread at the first step.
        for (std::size_t b = 0; b < running_.size(); ++b) running_[b].score = b == 0 ? 0.0 : beam_excluded;
        done_ = max_new_tokens_ == 0;
    }

    int beams() const { return num_beams_; }
    bool done() const { return done_; }
    int generated() const { return generated_; }
    BeamHypothesis const& running(int beam) const { return running_.at(std::size_t(beam)); }
    /// Finished hypotheses, best first.
    std::span<BeamHypothesis const> finished() const { return finished_; }

    /// scores (num_beams * vocab): the processed log-probabilities of every running beam, beam after beam.
    /// Returns the num_beams new running beams (whatever their source, they are beams 0.. of the next step).
    std::vector<Choice> step(std::span<double const> scores) {
        require(!done_, "BeamSearch::step: the search is done");
        require(scores.size() == std::size_t(num_beams_) * std::size_t(vocab_), "BeamSearch::step: expected ",
                std::size_t(num_beams_) * std::size_t(vocab_), " scores (num_beams * vocab), got ", scores.size());
        // 1. the best keep_ of all running score + log p.
        std::vector<double> total(scores.size());
        for (std::size_t i = 0; i < scores.size(); ++i) total[i] = scores[i] + running_[i / std::size_t(vocab_)].score;
        std::vector<std::int64_t> top(total.size());
        std::iota(top.begin(), top.end(), std::int64_t(0));
        std::partial_sort(top.begin(), top.begin() + keep_, top.end(), [&](std::int64_t a, std::int64_t b) {
            return total[std::size_t(a)] > total[std::size_t(b)] || (total[std::size_t(a)] == total[std::size_t(b)] && a < b);
        });
        top.resize(std::size_t(keep_));
        bool const last = generated_ + 1 >= max_new_tokens_;
        std::vector<BeamHypothesis> candidates(static_cast<std::size_t>(keep_));
        std::vector<int> source(static_cast<std::size_t>(keep_));
        std::vector<bool> hits(static_cast<std::size_t>(keep_));
        bool all_hit = true;
        for (std::size_t c = 0; c < candidates.size(); ++c) {
            source[c] = int(top[c] / vocab_);
            auto const token = std::int32_t(top[c] % vocab_);
            candidates[c].tokens = running_[std::size_t(source[c])].tokens;
            candidates[c].tokens.push_back(token);
            candidates[c].score = total[std::size_t(top[c])];
            hits[c] = last || std::find(eos_.begin(), eos_.end(), token) != eos_.end();
            all_hit = all_hit && hits[c];
        }
        // 3. the next running beams.
        std::vector<double> running_scores(candidates.size());
        for (std::size_t c = 0; c < candidates.size(); ++c)
            running_scores[c] = candidates[c].score + (hits[c] ? beam_excluded : 0.0);
        auto const next = best(running_scores, num_beams_);
        std::vector<BeamHypothesis> running(static_cast<std::size_t>(num_beams_));
        std::vector<Choice> choices;
        for (std::size_t b = 0; b < next.size(); ++b) {
            running[b].tokens = candidates[next[b]].tokens;
            running[b].score = running_scores[next[b]];
            choices.push_back({source[next[b]], candidates[next[b]].tokens.back()});
        }
        // 4. finished hypotheses.
        bool const full = all_finished() && early_stopping_ == EarlyStopping::AllFinished;
        double const length = std::pow(double(generated_ + 1), length_penalty_);
        std::vector<double> merged_scores;
        for (auto const& f : finished_) merged_scores.push_back(f.score);
        for (std::size_t c = 0; c < candidates.size(); ++c) {
            bool const just_finished = hits[c] && c < std::size_t(num_beams_);
            double s = candidates[c].score / length;
            if (full) s += beam_excluded;
            if (!improvable_) s += beam_excluded;
            if (!just_finished) s += beam_excluded;
            merged_scores.push_back(s);
        }
        auto const keep_finished = best(merged_scores, num_beams_);
        std::vector<BeamHypothesis> finished;
        for (std::size_t i : keep_finished) {
            if (i < finished_.size()) {
                finished.push_back(finished_[i]);
                continue;
            }
            std::size_t const c = i - finished_.size();
            finished.push_back({candidates[c].tokens, merged_scores[i], hits[c] && c < std::size_t(num_beams_)});
        }
        running_ = std::move(running);
        finished_ = std::move(finished);
        ++generated_;
        // 5. can the running beams still improve the finished ones?
        double const best_length = early_stopping_ == EarlyStopping::Never && length_penalty_ > 0
                                       ? double(max_new_tokens_)
                                       : double(generated_);
        double const best_possible = running_[0].score / std::pow(best_length, length_penalty_);
        double worst_finished = finished_[0].score;
        for (auto const& f : finished_) worst_finished = std::min(worst_finished, f.score);
        bool improvement = false;
        for (auto const& f : finished_) improvement = improvement || best_possible > (f.finished ? worst_finished : beam_excluded);
        improvable_ = improvable_ && improvement;
        bool const open_beam = !(all_finished() && early_stopping_ == EarlyStopping::AllFinished);
        done_ = !(improvable_ && open_beam && !all_hit);
        return choices;
    }

private:
    bool all_finished() const {
        return std::all_of(finished_.begin(), finished_.end(), [](auto const& f) { return f.finished; });
    }
    /// Indices of the n largest values, largest first, ties to the lower index (a stable top-k).
    static std::vector<std::size_t> best(std::vector<double> const& values, int n) {
        std::vector<std::size_t> order(values.size());
        std::iota(order.begin(), order.end(), std::size_t(0));
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] > values[b]; });
        order.resize(std::size_t(n));
        return order;
    }

    int num_beams_, vocab_, max_new_tokens_;
    double length_penalty_;
    EarlyStopping early_stopping_;
    std::vector<std::int32_t> eos_;
    int keep_;
    std::vector<BeamHypothesis> running_, finished_;
    int generated_ = 0;
    bool improvable_ = true;
    bool done_ = false;
};

}  // namespace polyalpaca::generation
