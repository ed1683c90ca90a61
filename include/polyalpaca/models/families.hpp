/// @file models/families.hpp
/// @brief The model families io/ reads and writes checkpoints of, by their HF side (models/<family>.hpp, `Hf`) and
///        their GGUF side (`Gguf`): the lists, and the lookups of a family by its model_type.
#pragma once

#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/models/model_spec.hpp"

namespace polyalpaca {

/// Every family's HF side. A new family adds its `Hf` here (docs/architecture.md, "How to add a model family").
using HfFamilies = std::tuple<bloom::Hf, gpt_neox::Hf, llama::Hf>;

/// Calls f.template operator()<Side>() for every element of the tuple `Sides` (HfFamilies, GgufFamilies), in order.
template <class Sides, class F>
void for_each_family_side(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (f.template operator()<std::tuple_element_t<I, Sides>>(), ...);
    }(std::make_index_sequence<std::tuple_size_v<Sides>>{});
}

/// Calls f.template operator()<Side>() for the element of `Sides` whose model_type is `model_type`; false when none
/// is.
template <class Sides, class F>
bool with_family_side(std::string_view model_type, F&& f) {
    bool found = false;
    for_each_family_side<Sides>([&]<class Side>() {
        if (!found && Side::model_type == model_type) {
            found = true;
            f.template operator()<Side>();
        }
    });
    return found;
}

/// Calls f.template operator()<Hf>() for every family, in order.
template <class F>
void for_each_hf_family(F&& f) {
    for_each_family_side<HfFamilies>(std::forward<F>(f));
}

/// Calls f.template operator()<Hf>() for the family whose model_type is `model_type`; false when none is.
template <class F>
bool with_hf_family(std::string_view model_type, F&& f) {
    return with_family_side<HfFamilies>(model_type, std::forward<F>(f));
}

/// Every family's GGUF side (models/gguf_layout.hpp), which io/gguf_export.hpp writes and reads llama.cpp files by.
using GgufFamilies = std::tuple<bloom::Gguf, gpt_neox::Gguf, llama::Gguf>;

namespace detail {
template <class Model, std::size_t I = 0>
constexpr std::size_t gguf_family_index() {
    if constexpr (I == std::tuple_size_v<GgufFamilies>)
        return I;
    else if constexpr (std::tuple_element_t<I, GgufFamilies>::model_type == std::string_view(Model::family))
        return I;
    else
        return gguf_family_index<Model, I + 1>();
}
}  // namespace detail

template <class Model>
struct GgufFamilyOf {
    static constexpr std::size_t index = detail::gguf_family_index<Model>();
    static_assert(index < std::tuple_size_v<GgufFamilies>,
                  "this model's family has no GGUF side: add its Gguf to GgufFamilies (models/families.hpp)");
    using type = std::tuple_element_t<index, GgufFamilies>;
};

/// The GGUF side of a family type such as Bloom<bloom::Size560m>.
template <class Model>
using gguf_family_of = typename GgufFamilyOf<Model>::type;

/// Calls f.template operator()<Gguf>() for the family whose model_type is `model_type`; false when none is.
template <class F>
bool with_gguf_family(std::string_view model_type, F&& f) {
    return with_family_side<GgufFamilies>(model_type, std::forward<F>(f));
}

/// "bloom, gpt_neox, llama".
inline std::string hf_family_names() {
    std::string out;
    for_each_hf_family([&]<class Hf>() { out += (out.empty() ? "" : ", ") + std::string(Hf::model_type); });
    return out;
}

/// Every family's presets (the published checkpoints and the test sizes), in family order.
inline std::vector<Preset> const& all_presets() {
    static std::vector<Preset> const table = [] {
        std::vector<Preset> out;
        for_each_hf_family([&]<class Hf>() {
            for (auto& p : Hf::presets()) out.push_back(std::move(p));
        });
        return out;
    }();
    return table;
}

}  // namespace polyalpaca
