/// @file adapters/lora.hpp
/// @brief LoRA<Rank, Alpha, Sites...>: low-rank adapters on chosen projections, base weights frozen.
#pragma once

#include <cmath>
#include <type_traits>

#include "polyalpaca/adapters/sites.hpp"

namespace polyalpaca {

/// y = x W^T + b + (alpha / rank) * dropout(x) A^T B^T, with A (rank, in) and B (out, rank).
/// A starts as PEFT's kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B starts at zero,
/// so a fresh adapter leaves the base model's outputs unchanged. Dropout is a runtime option.
template <int Rank, int Alpha, class... Sites>
struct LoRA {
    static_assert(Rank > 0, "LoRA rank must be positive");
    static_assert(Alpha > 0, "LoRA alpha must be positive");
    static_assert(sizeof...(Sites) > 0, "LoRA needs at least one site, e.g. LoRA<8, 16, site::Qkv>");

    static constexpr bool is_lora = true;
    static constexpr int rank = Rank;
    static constexpr int alpha = Alpha;
    static constexpr double scale = double(Alpha) / Rank;

    template <class Site>
    static constexpr bool applies_to = (std::is_same_v<Site, Sites> || ...);
    /// True when every site of this adapter is one the family has.
    template <class SiteList>
    static constexpr bool sites_within = (SiteList::template contains<Sites> && ...);

    /// PEFT's default initialisation bound for A.
    static double a_init_bound(int in_features) { return 1.0 / std::sqrt(double(in_features)); }
};

}  // namespace polyalpaca
