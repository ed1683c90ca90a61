/// @file io/gguf_adapter.hpp
/// @brief A PEFT LoRA adapter as a GGUF adapter file, the form llama.cpp's `--lora` loads and its
///        convert_lora_to_gguf.py writes: the base's architecture, general.type "adapter", adapter.type "lora",
///        adapter.lora.alpha, and per adapted module "<base tensor>.lora_a" / ".lora_b" in F32, B's rows in the base
///        tensor's GGUF row order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/gguf_export.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"

namespace polyalpaca::io {

/// What export_peft_lora_to_gguf wrote.
struct GgufAdapterExport {
    std::string architecture;
    std::size_t modules = 0;
    std::int64_t rank = 0;
    double alpha = 0;
};

namespace detail {

/// PEFT's adapter_config.json settings llama.cpp's LoRA cannot express (it scales every module by alpha / rank),
/// as one sentence naming the file; empty when there are none.
inline std::string lora_settings_llama_cpp_lacks(nlohmann::json const& c, std::string const& file) {
    if (c.value("peft_type", std::string()) != "LORA")
        return file + ": peft_type is '" + c.value("peft_type", std::string("?")) +
               "'; llama.cpp's adapters are LoRA only (polyalpaca_export --merge writes the model with it merged in)";
    if (c.value("use_dora", false))
        return file + ": use_dora is true; llama.cpp has no DoRA (polyalpaca_export --merge writes the model with it "
                      "merged in)";
    if (c.value("use_rslora", false))
        return file + ": use_rslora is true; llama.cpp scales by alpha / rank, not alpha / sqrt(rank)";
    for (char const* key : {"alpha_pattern", "rank_pattern"})
        if (c.contains(key) && c[key].is_object() && !c[key].empty())
            return file + ": " + key + " is set; llama.cpp has one alpha and rank per adapter";
    return {};
}

}  // namespace detail

/// Writes the PEFT LoRA adapter in `adapter_dir` (adapter_config.json, adapter_model.safetensors) of the HF checkpoint
/// in `base_dir` as a GGUF adapter for llama.cpp's `--lora`, as convert_lora_to_gguf.py writes it: A (r, in) as is,
/// B (out, r) with its rows in the base tensor's GGUF order (BLOOM's and GPT-NeoX's fused qkv regrouped, LLaMA's q/k
/// in Meta's pairs), both F32. Errors name the file and the tensor: a setting llama.cpp cannot express, a tensor that
/// is not a lora_A / lora_B of a module the family's GGUF file has, a module with one half only, and an A or B whose
/// shape does not fit the base's weight (an adapter of another base).
inline GgufAdapterExport export_peft_lora_to_gguf(std::filesystem::path const& base_dir,
                                                  std::filesystem::path const& adapter_dir,
                                                  std::filesystem::path const& out, std::string name) {
    auto const config = read_hf_config(base_dir);
    ModelSpec const spec = spec_from_config(config, (base_dir / "config.json").string());
    auto const base = SafetensorsCheckpoint::open(base_dir);
    std::string const config_file = (adapter_dir / "adapter_config.json").string();
    auto const peft = read_json_file(adapter_dir / "adapter_config.json");
    auto const lacking = detail::lora_settings_llama_cpp_lacks(peft, config_file);
    require(lacking.empty(), lacking);
    require(peft.contains("lora_alpha") && peft["lora_alpha"].is_number(), config_file, ": lora_alpha is missing");
    std::filesystem::path const weights = adapter_dir / "adapter_model.safetensors";
    auto const adapter = SafetensorsCheckpoint::open(weights);

    struct Module {
        std::string a, b;  ///< the adapter's tensor names
        GgufTensorPlace place;
    };
    std::map<std::string, Module> modules;  // by base weight name
    GgufAdapterExport result;
    result.alpha = peft["lora_alpha"].get<double>();
    GgufHeads const heads = gguf_heads(spec);  // outlives the tensors' fill functions, which run in write()
    GgufWriter w;
    bool const known = with_gguf_family(spec.family, [&]<class Gguf>() {
        result.architecture = Gguf::architecture;
        for (auto const& t : adapter.tensors()) {
            std::string_view n = t.name;
            constexpr std::string_view prefix = "base_model.model.", a_suffix = ".lora_A.weight",
                                       b_suffix = ".lora_B.weight";
            bool const is_a = n.ends_with(a_suffix), is_b = n.ends_with(b_suffix);
            require(n.starts_with(prefix) && (is_a || is_b), weights.string(), ": tensor '", printable_excerpt(t.name),
                    "' is not a LoRA A or B of a linear layer, which is all a llama.cpp adapter holds");
            std::string const weight(
                std::string(n.substr(prefix.size(), n.size() - prefix.size() - a_suffix.size())) + ".weight");
            auto const place = Gguf::tensor(weight);
            require(place.has_value(), weights.string(), ": tensor '", printable_excerpt(t.name), "' adapts '",
                    weight, "', which a GGUF ", Gguf::architecture, " model does not have");
            auto& m = modules[weight];
            (is_a ? m.a : m.b) = t.name;
            m.place = *place;
        }
        for (auto const& [weight, m] : modules) {
            require(!m.a.empty() && !m.b.empty(), weights.string(), ": '", weight, "' has a LoRA ",
                    m.a.empty() ? "B" : "A", " but no ", m.a.empty() ? "A" : "B");
            auto const* w_info = base.find(weight);
            if (w_info == nullptr)  // BLOOM's own checkpoints name weights without "transformer."
                with_hf_family(spec.family, [&]<class Hf>() {
                    if (auto const alias = Hf::checkpoint_alias(weight); !alias.empty()) w_info = base.find(alias);
                });
            require(w_info != nullptr, weights.string(), ": the adapter adapts '", weight, "', which the base ",
                    base_dir.string(), " does not hold");
            require(w_info->shape.size() == 2, weights.string(), ": '", m.a, "' adapts '", weight, "' ",
                    shape_string(w_info->shape), ", not a matrix");
            auto const& a = *adapter.find(m.a);
            auto const& b = *adapter.find(m.b);
            require(!a.shape.empty(), weights.string(), ": '", m.a, "' has no dimensions");
            std::int64_t const out_features = w_info->shape.at(0), in_features = w_info->shape.at(1);
            std::int64_t const rank = a.shape.at(0);
            bool const fits = a.shape.size() == 2 && b.shape.size() == 2 && a.shape[1] == in_features &&
                              b.shape[0] == out_features && b.shape[1] == rank;
            require(fits, weights.string(), ": '", m.a, "' ", shape_string(a.shape), " and '", m.b, "' ",
                    shape_string(b.shape), " do not fit the base's '", weight, "' ", shape_string(w_info->shape),
                    " (an adapter of another base?)");
            for (auto const* half : {&a, &b})
                require(is_float_dtype(half->dtype), weights.string(), ": tensor '", printable_excerpt(half->name),
                        "' is ", dtype_name(half->dtype), ", not a float type");
            auto const problem = gguf_rows_problem(m.place.rows, out_features, heads);
            require(problem.empty(), weights.string(), ": '", m.b, "' ", shape_string(b.shape), ": ", problem,
                    " (the base's config.json)");
            require(result.rank == 0 || result.rank == rank, weights.string(), ": '", m.a, "' has rank ", rank,
                    " where the others have ", result.rank, "; llama.cpp has one rank per adapter");
            result.rank = rank;
            w.add_tensor(m.place.name + ".lora_a", {in_features, rank}, GgmlType::F32,
                         [&, tensor = m.a](std::span<float> values) { adapter.read(tensor, values); });
            w.add_tensor(m.place.name + ".lora_b", {rank, out_features}, GgmlType::F32,
                         [&, tensor = m.b, order = m.place.rows, out_features, rank](std::span<float> values) {
                             adapter.read(tensor, values);
                             reorder_for_gguf(order, View<float>(values.data(), out_features, rank), heads, true);
                         });
            ++result.modules;
        }
        w.set("general.architecture", std::string(Gguf::architecture));
    });
    require(known, base_dir.string(), ": model_type '", spec.family, "' has no GGUF side (", hf_family_names(),
            " have)");
    require(result.modules > 0, weights.string(), ": holds no LoRA tensors");
    w.set("general.type", std::string("adapter"));
    w.set("general.name", std::move(name));
    w.set("adapter.type", std::string("lora"));
    w.set("adapter.lora.alpha", GgufValue{float(result.alpha)});
    w.write(out);
    return result;
}

}  // namespace polyalpaca::io
