/// @file adapters/none.hpp
/// @brief NoAdapter: full-parameter training, every weight trains.
#pragma once

#include <string_view>

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

struct NoAdapter {
    static constexpr std::string_view method = "full";
    static constexpr std::string_view name = "full-parameter";  ///< in messages and reports
    static constexpr bool trains_base = true;
    static constexpr bool has_dropout = false;
    template <class Site>
    static constexpr bool applies_to = false;
    template <class SiteList>
    static constexpr bool sites_within = true;
    template <int In, int Out, class Site>
    static constexpr Index parameter_count = 0;
    template <int In, int Out, class Site>
    static constexpr double flops_per_token = 0.0;
};

}  // namespace polyalpaca
