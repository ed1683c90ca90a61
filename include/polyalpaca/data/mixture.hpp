/// @file data/mixture.hpp
/// @brief Mixing strategies (monolingual, multilingual, downsampled, temperature, weighted) and their epoch plans.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/data/mixture_draw.hpp"
#include "polyalpaca/data/mixture_pools.hpp"
#include "polyalpaca/data/mixture_select.hpp"

namespace polyalpaca {

/// What one epoch trains on, in order. Entries index the mixture's pools; a record drawn twice appears twice.
struct EpochPlan {
    std::uint64_t epoch = 0;
    std::vector<PlanEntry> order;
    std::vector<std::size_t> counts;  ///< records per pool of the mixture, repeats included

    std::size_t size() const { return order.size(); }
};

/// A strategy bound to its pools and seed. The records an epoch uses (its selection) are fixed by the seed, or,
/// for temperature and weighted mixtures with `redraw_each_epoch`, by (seed, epoch); the order is reshuffled every
/// epoch from (seed, epoch). So plan(e) is a function of (pools, options, seed, e) only and a run resumed at
/// (epoch, position) replays the rest of that epoch exactly.
class Mixture {
public:
    /// One language: all its records every epoch.
    static Mixture monolingual(std::vector<LanguagePool> const& pools, std::string const& lang, std::uint64_t seed) {
        std::vector<LanguagePool> one{pools[find_pool(pools, lang)]};
        validate_pools(one);
        auto selection = mixture_select::everything(one);
        return Mixture("monolingual " + lang, std::move(one), seed, fixed(std::move(selection)));
    }

    /// The union of all given languages, shuffled together: N * M records per epoch for N languages of M.
    static Mixture multilingual(std::vector<LanguagePool> pools, std::uint64_t seed) {
        validate_pools(pools);
        auto selection = mixture_select::everything(pools);
        std::string name = "multilingual " + language_list(pools);
        return Mixture(std::move(name), std::move(pools), seed, fixed(std::move(selection)));
    }

    /// M records in total, M/N from each of the N languages (see DownsampleOptions); the same records every epoch.
    static Mixture downsampled(std::vector<LanguagePool> pools, DownsampleOptions const& options, std::uint64_t seed) {
        validate_pools(pools);
        auto selection = mixture_select::downsample(pools, options, seed);
        std::string name = std::string("multilingual downsampled (") +
                           (options.ids == SampleIds::Shared ? "shared" : "disjoint") + " ids) " + language_list(pools);
        return Mixture(std::move(name), std::move(pools), seed, fixed(std::move(selection)));
    }

    /// Languages in proportion to n_l^(1/T) (see TemperatureOptions).
    static Mixture temperature(std::vector<LanguagePool> pools, TemperatureOptions const& options, std::uint64_t seed) {
        validate_pools(pools);
        std::vector<std::size_t> sizes;
        for (auto const& p : pools) sizes.push_back(p.size());
        auto shares = temperature_probabilities(sizes, options.temperature);
        std::size_t total = options.total.value_or(total_size(pools));
        auto counts = apportion(shares, total);
        std::ostringstream name;
        name << "temperature T=" << options.temperature << " " << language_list(pools);
        bool const replace = options.with_replacement;
        return bind_draws(name.str(), std::move(pools), seed, std::move(counts), std::move(shares), replace,
                          options.redraw_each_epoch);
    }

    /// Explicit shares of the final mixture (see WeightedOptions); the pools are the weighted languages in order.
    static Mixture weighted(std::vector<LanguagePool> const& pools, WeightedOptions const& options,
                            std::uint64_t seed) {
        require(!options.weights.empty(), "a weighted mixture needs at least one (language, weight) pair");
        std::vector<LanguagePool> chosen;
        std::vector<double> weights;
        for (auto const& [lang, w] : options.weights) {
            chosen.push_back(pools[find_pool(pools, lang)]);
            weights.push_back(w);
        }
        validate_pools(chosen);
        auto shares = normalised_weights(chosen, weights);
        std::size_t total = options.total.value_or(largest_total_without_repeats(chosen, shares));
        auto counts = apportion(shares, total);
        while (!options.total && total > 0 && exceeds_a_pool(chosen, counts)) counts = apportion(shares, --total);
        for (std::size_t p = 0; p < chosen.size(); ++p)
            require(options.overdraw == Overdraw::Repeat || counts[p] <= chosen[p].size(),
                    "weighted mixture: language '", chosen[p].lang, "' is asked for ", counts[p], " of ", total,
                    " records (weight ", shares[p], ") but has only ", chosen[p].size(),
                    "; lower the total or set overdraw = Repeat");
        std::string name = "weighted " + language_list(chosen);
        return bind_draws(std::move(name), std::move(chosen), seed, std::move(counts), std::move(shares), false,
                          options.redraw_each_epoch);
    }

    /// The plan of epoch `epoch`: the selection, shuffled with a generator seeded by (seed, epoch).
    EpochPlan plan(std::uint64_t epoch) const {
        EpochPlan p;
        p.epoch = epoch;
        p.order = select_(epoch);
        Rng rng(derive_seed(seed_, DrawStream::EpochOrder, epoch));
        shuffle_in_place(p.order, rng);
        p.counts.assign(pools_.size(), 0);
        for (auto const& e : p.order) ++p.counts[e.pool];
        return p;
    }

    std::vector<LanguagePool> const& pools() const { return pools_; }
    std::string const& name() const { return name_; }
    std::uint64_t seed() const { return seed_; }
    /// The intended share of each pool in an epoch (temperature probabilities, normalised weights, or count / size).
    std::vector<double> const& shares() const { return shares_; }

private:
    using Selector = std::function<std::vector<PlanEntry>(std::uint64_t)>;

    Mixture(std::string name, std::vector<LanguagePool> pools, std::uint64_t seed, Selector select,
            std::vector<double> shares = {})
        : name_(std::move(name)),
          pools_(std::move(pools)),
          seed_(seed),
          select_(std::move(select)),
          shares_(std::move(shares)) {
        if (shares_.empty()) {
            auto const first = select_(0);
            shares_.assign(pools_.size(), 0.0);
            for (auto const& e : first) shares_[e.pool] += 1.0;
            for (auto& s : shares_) s /= double(first.size());
        }
    }

    static Selector fixed(std::vector<PlanEntry> selection) {
        require(!selection.empty(), "the mixture selects no records");
        auto shared = std::make_shared<std::vector<PlanEntry> const>(std::move(selection));
        return [shared](std::uint64_t) { return *shared; };
    }

    /// Draws counts[p] records from pool p (see draw_from_pool), once from the seed or anew for every epoch.
    static Mixture bind_draws(std::string name, std::vector<LanguagePool> pools, std::uint64_t seed,
                              std::vector<std::size_t> counts, std::vector<double> shares, bool with_replacement,
                              bool redraw_each_epoch) {
        std::vector<std::size_t> sizes;
        std::vector<std::uint64_t> lang_hashes;
        for (auto const& p : pools) {
            sizes.push_back(p.size());
            lang_hashes.push_back(stable_hash(p.lang));
        }
        auto draw = [=](std::uint64_t epoch) {
            std::vector<PlanEntry> out;
            for (std::size_t p = 0; p < sizes.size(); ++p) {
                Rng rng(derive_seed(seed, DrawStream::Selection, redraw_each_epoch ? epoch + 1 : 0, lang_hashes[p]));
                for (std::size_t i : draw_from_pool(sizes[p], counts[p], with_replacement, rng))
                    out.push_back(PlanEntry{std::uint32_t(p), i});
            }
            require(!out.empty(), "the mixture selects no records");
            return out;
        };
        Selector select = redraw_each_epoch ? Selector(draw) : fixed(draw(0));
        return Mixture(std::move(name), std::move(pools), seed, std::move(select), std::move(shares));
    }

    static std::string language_list(std::vector<LanguagePool> const& pools) {
        std::string s;
        for (auto const& p : pools) s += (s.empty() ? "" : "+") + p.lang;
        return s;
    }
    static std::size_t total_size(std::vector<LanguagePool> const& pools) {
        std::size_t n = 0;
        for (auto const& p : pools) n += p.size();
        return n;
    }
    static std::vector<double> normalised_weights(std::vector<LanguagePool> const& pools, std::vector<double> w) {
        double sum = 0.0;
        for (std::size_t p = 0; p < w.size(); ++p) {
            require(std::isfinite(w[p]) && w[p] >= 0.0, "weighted mixture: the weight of '", pools[p].lang, "' is ",
                    w[p], "; weights must be finite and non-negative");
            sum += w[p];
        }
        require(sum > 0.0, "weighted mixture: every weight is zero");
        for (auto& x : w) x /= sum;
        return w;
    }
    static bool exceeds_a_pool(std::vector<LanguagePool> const& pools, std::vector<std::size_t> const& counts) {
        for (std::size_t p = 0; p < pools.size(); ++p)
            if (counts[p] > pools[p].size()) return true;
        return false;
    }
    /// The largest total for which no language is asked for more records than it has: min over l of n_l / w_l.
    static std::size_t largest_total_without_repeats(std::vector<LanguagePool> const& pools,
                                                     std::vector<double> const& shares) {
        double best = std::numeric_limits<double>::infinity();
        for (std::size_t p = 0; p < pools.size(); ++p)
            if (shares[p] > 0.0) best = std::min(best, double(pools[p].size()) / shares[p]);
        return std::size_t(std::floor(best * (1.0 + 1e-12)));
    }

    std::string name_;
    std::vector<LanguagePool> pools_;
    std::uint64_t seed_ = 0;
    Selector select_;
    std::vector<double> shares_;
};

}  // namespace polyalpaca
