/// @file adapters/adapter.hpp
/// @brief The Adapter concept, the adapter policies (NoAdapter, LoRA, DoRA, IA3), and the role base weights take
///        under an adapter.
///
/// An adapter policy owns everything about its type: which sites it adapts, its branch around an adapted Linear
/// (`Branch<Backend, T, In, Out, Site>`: its parameters, forward, backward, dropout), its parameter count and FLOPs
/// per adapted projection, its tensors' names (`tensor_suffixes`), its adapter_config.json (`peft_config`,
/// `check_peft_config`) and its merge into the base weight (`merge`). io/ and the trainers ask the policy; none of
/// them names an adapter type. docs/architecture.md, "How to add an adapter".
#pragma once

#include <array>
#include <concepts>
#include <string>
#include <string_view>

#include "polyalpaca/adapters/dora.hpp"
#include "polyalpaca/adapters/ia3.hpp"
#include "polyalpaca/adapters/lora.hpp"
#include "polyalpaca/adapters/none.hpp"
#include "polyalpaca/core/parameter.hpp"

namespace polyalpaca {

/// NoAdapter, or a policy that adapts some sites and freezes the base.
template <class A>
concept Adapter = requires {
    { A::method } -> std::convertible_to<std::string_view>;
    { A::trains_base } -> std::convertible_to<bool>;
    { A::has_dropout } -> std::convertible_to<bool>;
};

/// An adapter method's spelling (run_config.json's "method", a study file's "methods") and its name in reports.
struct AdapterMethod {
    std::string_view method;
    std::string_view name;
};

/// Every adapter policy's method. A new adapter adds its line here, beside its include above.
inline constexpr std::array<AdapterMethod, 3> adapter_methods{{
    {LoRA<1, 1, site::Qkv>::method, LoRA<1, 1, site::Qkv>::name},
    {DoRA<1, 1, site::Qkv>::method, DoRA<1, 1, site::Qkv>::name},
    {IA3<site::Qkv>::method, IA3<site::Qkv>::name},
}};

/// True for "lora", "dora", "ia3": a method adapter_methods lists.
constexpr bool is_adapter_method(std::string_view method) {
    for (auto const& m : adapter_methods)
        if (m.method == method) return true;
    return false;
}

/// "lora, dora, ia3".
inline std::string adapter_method_list() {
    std::string out;
    for (auto const& m : adapter_methods) out += (out.empty() ? "" : ", ") + std::string(m.method);
    return out;
}

/// True for a policy with adapter weights of its own (every one but NoAdapter): its weights are saved as a PEFT
/// adapter, and merged into the base to make a plain checkpoint.
template <class A>
inline constexpr bool has_adapter_weights = !A::trains_base;

/// True when the policy's branch reads its base weight's values beyond GEMM operands (DoRA builds W + s B A): such a
/// base cannot be kept in bf16 only (backend/cuda/frozen_bf16.cuh).
template <class A>
inline constexpr bool reads_base_values = requires { requires A::reads_base_values; };

/// Under an adapter every base weight (embeddings and norms included) is frozen; without, all train.
template <Adapter A>
inline constexpr Role base_role = A::trains_base ? Role::Trainable : Role::Frozen;

}  // namespace polyalpaca
