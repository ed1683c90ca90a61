/// @file adapters/sites.hpp
/// @brief Tags naming the projections an adapter can attach to.
#pragma once

#include <type_traits>

namespace polyalpaca::site {

struct Qkv { static constexpr char const* name = "Qkv (fused query_key_value)"; };
struct Query { static constexpr char const* name = "Query (q_proj)"; };
struct Key { static constexpr char const* name = "Key (k_proj)"; };
struct Value { static constexpr char const* name = "Value (v_proj)"; };
struct AttnOut { static constexpr char const* name = "AttnOut (dense / o_proj)"; };
struct MlpUp { static constexpr char const* name = "MlpUp (dense_h_to_4h / up_proj)"; };
struct MlpDown { static constexpr char const* name = "MlpDown (dense_4h_to_h / down_proj)"; };
struct MlpGate { static constexpr char const* name = "MlpGate (gate_proj)"; };

/// The sites a family has, as a type list: SiteList<Qkv, AttnOut, ...>.
template <class... Sites>
struct SiteList {
    template <class S>
    static constexpr bool contains = (std::is_same_v<S, Sites> || ...);
};

}  // namespace polyalpaca::site
