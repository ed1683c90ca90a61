/// @file models/causal_lm.hpp
/// @brief CausalLm<Model, Backend, T>: a family's graph made real — parameters bound in arenas, forward,
///        backward and loss for a TokenBatch.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/backend/contract.hpp"
#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/embedding.hpp"
#include "polyalpaca/layers/kv_cache.hpp"
#include "polyalpaca/layers/lm_head.hpp"
#include "polyalpaca/layers/repeat.hpp"

namespace polyalpaca {

/// Stands in for a layer a family does not have (BLOOM's embedding norm elsewhere, an untied head when tied).
struct Absent {
    template <class... Args>
    explicit Absent(Args const&...) {}
    template <class F>
    void visit_parameters(F&&) {}
};

/// Runtime options of a network (nothing here changes storage).
struct NetworkOptions {
    std::uint64_t seed = 0;         ///< parameter initialisation and dropout
    double adapter_dropout = 0.0;   ///< LoRA dropout on the adapter input (PEFT lora_dropout; the paper uses 0.05)
};

/// The loss of one forward pass: sum of token losses and how many tokens were scored.
struct BatchLoss {
    double sum = 0;
    std::int64_t count = 0;
    double mean() const { return count > 0 ? sum / double(count) : 0.0; }
};

/// Model is a family type (Bloom<...>, GptNeoX<...>, Llama<...>) that provides
///   config (the Size struct), adapter, embedding_name, final_norm_name, head_name, tied_head,
///   template <B, T> Parts (see layers/residual_block.hpp), Block, FinalNorm, and optionally EmbeddingNorm.
/// Non-copyable and non-movable: its parameters point into its own arenas.
template <class Model, class Backend, class T = float>
class CausalLm {
    static_assert(backend_contract::check<Backend, T>());  // one sentence per group of ops the backend lacks

public:
    using Config = typename Model::config;
    using Parts = typename Model::template Parts<Backend, T>;
    using Block = typename Model::template Block<Backend, T>;
    using FinalNorm = typename Parts::Norm;  // also the embedding norm where the family has one
    using Scalar = T;
    using BackendType = Backend;
    static constexpr int vocab = Config::vocab;
    static constexpr int hidden = Config::hidden;
    static constexpr bool has_embedding_norm = Model::has_embedding_norm;
    static constexpr bool tied_head = Model::tied_head;

    CausalLm(typename Backend::Context& ctx, NetworkOptions const& options = {})
        : embedding_(Model::embedding_name, Config::init_std),
          embedding_norm_(Model::embedding_norm_name, Config::norm_eps),
          blocks_(typename Parts::Options{options.adapter_dropout}),
          final_norm_(Model::final_norm_name, Config::norm_eps),
          head_(std::string(Model::head_name) + ".weight", vocab, hidden, base_role<typename Model::adapter>,
                Init::normal(Config::init_std)),
          dropout_rng_(dropout_seed(options.seed)), seed_(options.seed) {
        std::vector<Parameter<T>*> params;
        visit_parameters([&](Parameter<T>& p) { params.push_back(&p); });
        store_.bind(std::move(params));
        store_.initialise(ctx, options.seed);
    }
    CausalLm(CausalLm const&) = delete;
    CausalLm& operator=(CausalLm const&) = delete;

    /// Every parameter in a fixed order: embedding, [embedding norm], blocks, final norm, [untied head].
    template <class F>
    void visit_parameters(F&& f) {
        embedding_.visit_parameters(f);
        embedding_norm_.visit_parameters(f);
        blocks_.visit_parameters(f);
        final_norm_.visit_parameters(f);
        if constexpr (!tied_head) f(head_);
    }

    ParameterStore<Backend, T>& parameters() { return store_; }
    Block& block(int i) { return blocks_[i]; }
    void set_training(bool training) { training_ = training; }
    /// The generator behind adapter dropout; its state is part of a training checkpoint.
    Rng& dropout_rng() { return dropout_rng_; }

    /// Back to the state of a network just built with `seed` whose frozen weights were kept: the trainable weights
    /// drawn again, the dropout generator restarted. One network (its base weights read once) then serves run
    /// after run, each starting where a new network would.
    void reset_trainable(typename Backend::Context& ctx, std::uint64_t seed) {
        store_.initialise(ctx, seed, ParameterStore<Backend, T>::Which::Trainable);
        restart_dropout(seed);
    }
    /// The dropout generator as construction with `seed` left it.
    void restart_dropout(std::uint64_t seed) {
        seed_ = seed;
        dropout_rng_ = Rng(dropout_seed(seed));
    }
    /// The dropout generator of the stream `key` of this network's seed (TokenBatch::dropout_key): distinct keys give
    /// independent streams, and the same key the same masks in any process.
    void key_dropout(std::uint64_t key) { dropout_rng_ = Rng(dropout_seed(seed_) ^ (key * 0x9E3779B97F4A7C15ull)); }
    bool training() const { return training_; }

    /// Forward and backward on one micro-batch: adds d(mean loss * loss_scale)/d(weights) into the gradient
    /// arena (use loss_scale = 1/accumulation_steps to accumulate). Returns the unscaled loss.
    BatchLoss forward_backward(typename Backend::Context& ctx, TokenBatch const& batch, double loss_scale = 1.0) {
        store_.mark_gradients_written();
        auto h = forward_hidden(ctx, batch);
        set_profile_phase(ctx, Phase::Backward);  // the head's chunks compute logits, loss and gradient together
        ScratchFrame temps(ctx.temporaries);
        auto dh = temps.template take<T>(h.rows, hidden);
        Backend::fill_zero(ctx, dh.data, std::size_t(dh.size()));
        auto loss = head_loss_.forward_backward(ctx, View<T const>(h), labels_of(batch), batch.batch(), batch.seq(),
                                                head_weight(), dh, loss_scale);
        backward_hidden(ctx, dh);
        return {loss.sum, loss.count};
    }

    /// Loss only (no gradients, dropout off).
    BatchLoss evaluate(typename Backend::Context& ctx, TokenBatch const& batch) {
        bool const was_training = training_;
        training_ = false;
        auto h = forward_hidden(ctx, batch);
        training_ = was_training;
        auto loss = head_loss_.loss(ctx, View<T const>(h), labels_of(batch), batch.batch(), batch.seq(), head_weight());
        return {loss.sum, loss.count};
    }

    /// Full logits (batch * seq, vocab), dropout off.
    void logits(typename Backend::Context& ctx, TokenBatch const& batch, View<T> out) {
        require_shape(out, batch.tokens(), vocab, "logits output");
        bool const was_training = training_;
        training_ = false;
        auto h = forward_hidden(ctx, batch);
        training_ = was_training;
        head_loss_.logits(ctx, View<T const>(h), head_weight(), out);
    }

    /// Incremental decoding state for this network (layers/kv_cache.hpp).
    using Cache = KvCache<Backend, T>;

    /// An empty cache with one slot per entry of `capacities` (the most positions each slot will hold).
    Cache make_cache(std::span<int const> capacities) const {
        for (std::size_t s = 0; s < capacities.size(); ++s)
            require(capacities[s] <= Config::max_positions, "make_cache: slot ", s, " needs ", capacities[s],
                    " positions, more than the model's maximum of ", Config::max_positions);
        return Cache(Config::layers, Block::Attention::kv_width, capacities);
    }

    /// Incremental forward, dropout off: the new tokens of every step (ids holds them step after step) run
    /// through the network against, and are appended to, their slot's cache. Writes the logits of the last new
    /// token of each step into out (steps.size(), vocab). Slots must be distinct within one call. Prefill is a
    /// step with the whole prompt; decoding, steps of one token.
    void forward_cached(typename Backend::Context& ctx, Cache& cache, std::span<CacheStep const> steps,
                        std::span<std::int32_t const> ids, View<T> out) {
        require(!steps.empty(), "forward_cached: no steps");
        require(cache.layers() == Config::layers, "forward_cached: the cache has ", cache.layers(),
                " layers, the model ", Config::layers);
        require_shape(out, Index(steps.size()), vocab, "forward_cached: logits output (steps, vocab)");
        cached_seqs_.clear();
        last_rows_.clear();
        std::vector<bool> used(std::size_t(cache.slots()), false);
        Index rows = 0;
        for (auto const& step : steps) {
            cached_seqs_.push_back(cache.step(step.slot, step.tokens));
            require(!used[std::size_t(step.slot)], "forward_cached: slot ", step.slot, " appears twice in one call");
            used[std::size_t(step.slot)] = true;
            rows += step.tokens;
            last_rows_.push_back(std::int32_t(rows - 1));
        }
        require(Index(ids.size()) == rows, "forward_cached: ", ids.size(), " ids for steps of ", rows, " tokens");
        Mode const mode{false, &dropout_rng_};
        std::span<CachedSequence const> const seqs(cached_seqs_);
        View<T> x = embedding_.forward(ctx, ids, mode);  // (R, D)
        if constexpr (has_embedding_norm) x = embedding_norm_.forward(ctx, x, mode);
        for (int l = 0; l < Config::layers; ++l) x = blocks_[l].forward_cached(ctx, x, cache.layer(l), seqs, mode);
        auto last = last_hidden_.ensure(Index(steps.size()), hidden);  // (steps, D)
        gather_rows(ctx, View<T const>(x), std::span<std::int32_t const>(last_rows_), last);
        auto h = final_norm_.forward(ctx, last, mode);
        head_loss_.logits(ctx, View<T const>(h), head_weight(), out);
        for (auto const& step : steps) cache.advance(step.slot, step.tokens);
    }

private:
    static std::uint64_t dropout_seed(std::uint64_t seed) { return seed ^ 0x5eedd0u; }
    static std::span<std::int32_t const> ids_of(TokenBatch const& b) { return {b.ids.data(), b.ids.size()}; }
    static std::span<std::int32_t const> labels_of(TokenBatch const& b) { return {b.labels.data(), b.labels.size()}; }
    Parameter<T>& head_weight() {
        if constexpr (tied_head) return embedding_.table();
        else return head_;
    }

    View<T> forward_hidden(typename Backend::Context& ctx, TokenBatch const& batch) {  // -> (N, D)
        validate_batch(batch, Config::max_positions);
        set_profile_phase(ctx, Phase::Forward);
        Mode const mode{training_, &dropout_rng_};
        View<T> x = embedding_.forward(ctx, ids_of(batch), mode);
        if constexpr (has_embedding_norm) x = embedding_norm_.forward(ctx, x, mode);
        for (auto& block : blocks_) x = block.forward(ctx, x, batch.batch(), batch.seq(), mode);
        return final_norm_.forward(ctx, x, mode);
    }

    void backward_hidden(typename Backend::Context& ctx, View<T> dh) {
        Index const n = dh.rows;
        ScratchFrame temps(ctx.temporaries);
        auto dx = temps.template take<T>(n, hidden);
        Backend::fill_zero(ctx, dx.data, std::size_t(dx.size()));
        final_norm_.backward(ctx, dh, dx);
        auto dy = temps.template take<T>(n, hidden);
        for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
            std::swap(dx, dy);  // dy: gradient w.r.t. this block's output
            Backend::fill_zero(ctx, dx.data, std::size_t(dx.size()));
            it->backward(ctx, dy, dx);
        }
        if constexpr (has_embedding_norm) {
            std::swap(dx, dy);
            Backend::fill_zero(ctx, dx.data, std::size_t(dx.size()));
            embedding_norm_.backward(ctx, dy, dx);
        }
        embedding_.backward(ctx, dx);
    }

    Embedding<Backend, T, vocab, hidden, base_role<typename Model::adapter>> embedding_;
    [[no_unique_address]] std::conditional_t<has_embedding_norm, FinalNorm, Absent> embedding_norm_;
    Repeat<Config::layers, Block> blocks_;
    FinalNorm final_norm_;
    std::conditional_t<tied_head, Absent, Parameter<T>> head_;
    LmHeadLoss<Backend, T, vocab, hidden> head_loss_;
    ParameterStore<Backend, T> store_;
    Rng dropout_rng_;
    std::uint64_t seed_;  ///< of the weights and the dropout streams
    bool training_ = true;
    ActivationBuffer<Backend, T> last_hidden_;  // forward_cached
    std::vector<CachedSequence> cached_seqs_;   // forward_cached
    std::vector<std::int32_t> last_rows_;       // forward_cached
};

}  // namespace polyalpaca
