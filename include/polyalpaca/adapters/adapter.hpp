/// @file adapters/adapter.hpp
/// @brief The Adapter concept, and the role base weights take under an adapter.
#pragma once

#include <concepts>

#include "polyalpaca/adapters/lora.hpp"
#include "polyalpaca/adapters/none.hpp"
#include "polyalpaca/core/parameter.hpp"

namespace polyalpaca {

/// NoAdapter or LoRA<...>: says whether it is LoRA and which sites it applies to.
template <class A>
concept Adapter = requires {
    { A::is_lora } -> std::convertible_to<bool>;
    { A::rank } -> std::convertible_to<int>;
};

/// Under LoRA every base weight (embeddings and norms included) is frozen; without, all train.
template <Adapter A>
inline constexpr Role base_role = A::is_lora ? Role::Frozen : Role::Trainable;

}  // namespace polyalpaca
