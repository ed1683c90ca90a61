/// @file adapters/none.hpp
/// @brief NoAdapter: full-parameter training, every weight trains.
#pragma once

namespace polyalpaca {

struct NoAdapter {
    static constexpr bool is_lora = false;
    static constexpr int rank = 0;
    template <class Site>
    static constexpr bool applies_to = false;
    template <class SiteList>
    static constexpr bool sites_within = true;
};

}  // namespace polyalpaca
