/// @file study/presets.hpp
/// @brief The base models a study can name, as types: per preset name (the checkpoint's, as io/model_spec.hpp
///        names it) the full-parameter model and the same model with each adapter a study's "methods" may name: the
///        paper's LoRA (r 8, alpha 16 on the fused query_key_value of BLOOM and GPT-NeoX, on q, k and v of LLaMA),
///        DoRA on the same modules, and IA3 on PEFT's default modules of the family. The study runner compiles an
///        engine for the presets a build asks for (POLYALPACA_STUDY_PRESETS) and plans memory for all of them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/study/embedded_default.hpp"

namespace polyalpaca::study {

/// The paper's LoRA: r 8, alpha 16 on the attention's input projections.
using PaperLoraFused = LoRA<8, 16, site::Qkv>;                         // BLOOM, GPT-NeoX: query_key_value
using PaperLoraSeparate = LoRA<8, 16, site::Query, site::Key, site::Value>;  // LLaMA: q_proj, k_proj, v_proj

/// DoRA on the paper's LoRA modules, at the paper's r and alpha.
using PaperDoraFused = DoRA<8, 16, site::Qkv>;
using PaperDoraSeparate = DoRA<8, 16, site::Query, site::Key, site::Value>;

/// IA3 where PEFT puts it by default: the fused query_key_value and the MLP's down projection (BLOOM, GPT-NeoX);
/// k_proj, v_proj and down_proj (LLaMA).
using DefaultIa3Fused = IA3<site::Qkv, site::MlpDown>;
using DefaultIa3Separate = IA3<site::Key, site::Value, site::MlpDown>;

/// One preset: the model types a study trains (full-parameter, and one per adapter method) and its head dim.
/// `Adapted` lists the adapted models in the order of adapter_methods.
template <class FullModel, class LoraModel, class DoraModel, class Ia3Model>
struct StudyPreset {
    using Full = FullModel;
    using Lora = LoraModel;
    using Adapted = std::tuple<LoraModel, DoraModel, Ia3Model>;
    static constexpr int head_dim = Full::config::hidden / Full::config::heads;
};
template <class Size>
using BloomPreset = StudyPreset<Bloom<Size>, Bloom<Size, PaperLoraFused>, Bloom<Size, PaperDoraFused>,
                                Bloom<Size, DefaultIa3Fused>>;
template <class Size>
using PythiaPreset = StudyPreset<GptNeoX<Size>, GptNeoX<Size, PaperLoraFused>, GptNeoX<Size, PaperDoraFused>,
                                 GptNeoX<Size, DefaultIa3Fused>>;
template <class Size>
using LlamaPreset = StudyPreset<Llama<Size>, Llama<Size, PaperLoraSeparate>, Llama<Size, PaperDoraSeparate>,
                                Llama<Size, DefaultIa3Separate>>;

/// Calls f.template operator()<Model>() with preset P's model of `method` ("full", "lora", "dora" or "ia3") and
/// returns what it returns; any other method is an Error.
template <class P, class F>
auto with_method_model(std::string_view method, F&& f) {
    using Result = decltype(f.template operator()<typename P::Full>());
    if (method == P::Full::adapter::method) return f.template operator()<typename P::Full>();
    std::optional<Result> out;
    [&]<class... Adapted>(std::tuple<Adapted...>*) {
        ((!out && method == Adapted::adapter::method ? (void)out.emplace(f.template operator()<Adapted>()) : void()),
         ...);
    }(static_cast<typename P::Adapted*>(nullptr));
    require(out.has_value(), "no model of method \"", method, "\": a study trains one of ", adapter_method_list(),
            ", full");
    return std::move(*out);
}

namespace preset {
struct BloomStudy : BloomPreset<bloom::SizeStudy> { static constexpr std::string_view name = "bloom-study"; };
struct Bloom560m : BloomPreset<bloom::Size560m> { static constexpr std::string_view name = "bloom-560m"; };
struct Bloom1b1 : BloomPreset<bloom::Size1b1> { static constexpr std::string_view name = "bloom-1b1"; };
struct Bloom1b7 : BloomPreset<bloom::Size1b7> { static constexpr std::string_view name = "bloom-1b7"; };
struct Bloom3b : BloomPreset<bloom::Size3b> { static constexpr std::string_view name = "bloom-3b"; };
struct Bloom7b1 : BloomPreset<bloom::Size7b1> { static constexpr std::string_view name = "bloom-7b1"; };
struct Pythia70m : PythiaPreset<gpt_neox::Size70m> { static constexpr std::string_view name = "pythia-70m"; };
struct Pythia160m : PythiaPreset<gpt_neox::Size160m> { static constexpr std::string_view name = "pythia-160m"; };
struct Pythia410m : PythiaPreset<gpt_neox::Size410m> { static constexpr std::string_view name = "pythia-410m"; };
struct Pythia1b : PythiaPreset<gpt_neox::Size1b> { static constexpr std::string_view name = "pythia-1b"; };
struct Pythia1b4 : PythiaPreset<gpt_neox::Size1b4> { static constexpr std::string_view name = "pythia-1.4b"; };
struct Pythia2b8 : PythiaPreset<gpt_neox::Size2b8> { static constexpr std::string_view name = "pythia-2.8b"; };
struct Pythia6b9 : PythiaPreset<gpt_neox::Size6b9> { static constexpr std::string_view name = "pythia-6.9b"; };
struct Pythia12b : PythiaPreset<gpt_neox::Size12b> { static constexpr std::string_view name = "pythia-12b"; };
struct OpenLlama3b : LlamaPreset<llama::OpenLlama3b> { static constexpr std::string_view name = "open-llama-3b"; };
struct OpenLlama7b : LlamaPreset<llama::OpenLlama7b> { static constexpr std::string_view name = "open-llama-7b"; };
struct OpenLlama13b : LlamaPreset<llama::OpenLlama13b> {
    static constexpr std::string_view name = "open-llama-13b";
};
struct Llama7b : LlamaPreset<llama::Size7b> { static constexpr std::string_view name = "llama-7b"; };
struct Llama13b : LlamaPreset<llama::Size13b> { static constexpr std::string_view name = "llama-13b"; };
}  // namespace preset

/// Every preset a study may name, in the order --plan and error messages list them.
using StudyPresets =
    std::tuple<preset::BloomStudy, preset::Bloom560m, preset::Bloom1b1, preset::Bloom1b7, preset::Bloom3b,
               preset::Bloom7b1, preset::Pythia70m, preset::Pythia160m, preset::Pythia410m, preset::Pythia1b,
               preset::Pythia1b4, preset::Pythia2b8, preset::Pythia6b9, preset::Pythia12b, preset::OpenLlama3b,
               preset::OpenLlama7b, preset::OpenLlama13b, preset::Llama7b, preset::Llama13b>;

inline constexpr std::size_t no_preset = std::tuple_size_v<StudyPresets>;

/// The index of the preset called `name` in StudyPresets, or no_preset.
constexpr std::size_t preset_index(std::string_view name) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
        std::size_t found = no_preset;
        ((std::tuple_element_t<I, StudyPresets>::name == name ? (found = I, 0) : 0), ...);
        return found;
    }(std::make_index_sequence<std::tuple_size_v<StudyPresets>>{});
}

/// Calls f.template operator()<Preset>() for every preset, in order.
template <class F>
void for_each_preset(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (f.template operator()<std::tuple_element_t<I, StudyPresets>>(), ...);
    }(std::make_index_sequence<std::tuple_size_v<StudyPresets>>{});
}

/// "bloom-study, bloom-560m, ...": every preset name.
inline std::string known_preset_names() {
    std::string out;
    for_each_preset([&]<class P>() { out += (out.empty() ? "" : ", ") + std::string(P::name); });
    return out;
}

}  // namespace polyalpaca::study
