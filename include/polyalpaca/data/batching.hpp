/// @file data/batching.hpp
/// @brief An epoch's training order (plain shuffle or group_by_length), its steps and micro-batches, and collation.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/batching_length_grouped.hpp"
#include "polyalpaca/data/mixture.hpp"

namespace polyalpaca {

/// Shuffle: the mixture's per-epoch shuffled order as it is (HF's RandomSampler; the paper's FPFT).
/// GroupByLength: that order regrouped by HF's length-grouped sampler (the paper's LoRA runs).
enum class SampleOrder { Shuffle, GroupByLength };

/// global batch = micro_batch * accumulation (per rank). HF builds LengthGroupedSampler with
/// train_batch_size * gradient_accumulation_steps, so group_by_length's batch size here is the global batch.
struct BatchingOptions {
    std::size_t micro_batch = 4;
    std::size_t accumulation = 32;
    SampleOrder order = SampleOrder::Shuffle;
    std::optional<std::size_t> mega_batch_mult;  ///< empty: HF's default min(n / (4 * global), 50), at least 1
    std::int32_t pad_id = 0;

    std::size_t global_batch() const { return micro_batch * accumulation; }
};

/// Options for a global batch split into micro-batches of `micro_batch`; throws unless micro_batch divides it.
inline BatchingOptions batching_for_global(std::size_t global_batch, std::size_t micro_batch,
                                           SampleOrder order = SampleOrder::Shuffle) {
    require(micro_batch > 0 && global_batch > 0 && global_batch % micro_batch == 0, "a global batch of ", global_batch,
            " sequences cannot be split into micro-batches of ", micro_batch);
    BatchingOptions o;
    o.micro_batch = micro_batch;
    o.accumulation = global_batch / micro_batch;
    o.order = order;
    return o;
}

/// The order epoch `epoch` trains in: a function of (mixture, options, epoch) only. group_by_length starts from a
/// permutation seeded by (mixture seed, epoch), so resuming at (epoch, position) replays the rest exactly.
inline std::vector<PlanEntry> epoch_order(Mixture const& mixture, std::uint64_t epoch, BatchingOptions const& options) {
    std::vector<PlanEntry> order = mixture.plan(epoch).order;
    if (options.order == SampleOrder::Shuffle) return order;
    require(options.global_batch() > 0, "group_by_length needs a positive global batch");
    std::vector<std::int64_t> lengths;
    lengths.reserve(order.size());
    for (auto const& e : order) lengths.push_back(example_at(mixture.pools(), e).tokens);
    Rng rng(derive_seed(mixture.seed(), DrawStream::LengthGroups, epoch));
    std::vector<PlanEntry> grouped;
    grouped.reserve(order.size());
    for (std::size_t i : length_grouped_indices(lengths, options.global_batch(), rng, options.mega_batch_mult))
        grouped.push_back(order[i]);
    return grouped;
}

/// Positions [begin, end) of an epoch's order.
struct EpochRange {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t size() const { return end - begin; }
    friend bool operator==(EpochRange const&, EpochRange const&) = default;
};

/// One optimizer step: its records, cut into micro-batches of at most micro_batch.
struct StepPlan {
    EpochRange records;
    std::vector<EpochRange> micro_batches;
};

/// The steps of an epoch of `records` records from position `from` on: consecutive global batches, each cut into
/// micro-batches; the last step of an epoch may be short, and so may its last micro-batch (HF's dataloader without
/// drop_last, which steps at the end of the epoch with the micro-batches it has). `from` must be a step boundary.
inline std::vector<StepPlan> epoch_steps(std::size_t records, BatchingOptions const& options, std::size_t from = 0) {
    std::size_t const global = options.global_batch();
    require(options.micro_batch > 0 && options.accumulation > 0, "micro_batch and accumulation must be positive, got ",
            options.micro_batch, " and ", options.accumulation);
    require(from <= records && (from % global == 0 || from == records), "resume position ", from,
            " is not a step boundary (a multiple of the global batch ", global, ") within the epoch of ", records,
            " records");
    std::vector<StepPlan> steps;
    for (std::size_t begin = from; begin < records; begin += global) {
        StepPlan step;
        step.records = EpochRange{begin, std::min(records, begin + global)};
        for (std::size_t m = begin; m < step.records.end; m += options.micro_batch)
            step.micro_batches.push_back(EpochRange{m, std::min(step.records.end, m + options.micro_batch)});
        steps.push_back(std::move(step));
    }
    return steps;
}

/// What collate needs of an example: token ids and labels of equal length (HF labels, unshifted; -100 = not scored).
template <class E>
concept TokenExample = requires(E const& e) {
    { e.ids.size() } -> std::convertible_to<std::size_t>;
    { e.labels.size() } -> std::convertible_to<std::size_t>;
    { e.ids[0] } -> std::convertible_to<std::int32_t>;
    { e.labels[0] } -> std::convertible_to<std::int32_t>;
};

/// The smallest TokenExample, for callers without their own record type.
struct TokenizedExample {
    std::vector<std::int32_t> ids;
    std::vector<std::int32_t> labels;
};

/// A (B, T) batch padded on the right to the longest example: ids with pad_id, labels with -100.
template <TokenExample E>
TokenBatch collate(std::span<E const* const> examples, std::int32_t pad_id) {
    require(!examples.empty(), "collate: a micro-batch needs at least one example");
    std::size_t width = 0;
    for (std::size_t b = 0; b < examples.size(); ++b) {
        require(examples[b] != nullptr, "collate: example ", b, " of the micro-batch is missing");
        E const& e = *examples[b];
        require(e.ids.size() > 0, "collate: example ", b, " of the micro-batch has no tokens");
        require(e.labels.size() == e.ids.size(), "collate: example ", b, " has ", e.ids.size(), " ids but ",
                e.labels.size(), " labels");
        width = std::max<std::size_t>(width, e.ids.size());
    }
    TokenBatch batch;
    batch.ids = xt::xtensor<std::int32_t, 2>::from_shape({examples.size(), width});
    batch.labels = xt::xtensor<std::int32_t, 2>::from_shape({examples.size(), width});
    batch.ids.fill(pad_id);
    batch.labels.fill(ignore_index);
    for (std::size_t b = 0; b < examples.size(); ++b) {
        E const& e = *examples[b];
        for (std::size_t t = 0; t < std::size_t(e.ids.size()); ++t) {
            batch.ids(b, t) = std::int32_t(e.ids[t]);
            batch.labels(b, t) = std::int32_t(e.labels[t]);
        }
    }
    return batch;
}

/// The micro-batches of one step as TokenBatches; `get(PlanEntry)` returns the example (a TokenExample) it names.
template <class Get>
std::vector<TokenBatch> step_batches(std::vector<PlanEntry> const& order, StepPlan const& step, Get&& get,
                                     std::int32_t pad_id) {
    using E = std::remove_cvref_t<decltype(get(order.front()))>;
    std::vector<TokenBatch> out;
    for (EpochRange const& mb : step.micro_batches) {
        require(mb.end <= order.size() && mb.begin < mb.end, "micro-batch [", mb.begin, ", ", mb.end,
                ") is outside the epoch of ", order.size(), " records");
        std::vector<E const*> examples;
        for (std::size_t i = mb.begin; i < mb.end; ++i) examples.push_back(&get(order[i]));
        out.push_back(collate(std::span<E const* const>(examples), pad_id));
    }
    return out;
}

}  // namespace polyalpaca
