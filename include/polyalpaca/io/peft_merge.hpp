/// @file io/peft_merge.hpp
/// @brief A PEFT adapter (LoRA, DoRA or IA3) read from its files and merged into base tensors one at a time as they
///        are read, as PEFT's merge_and_unload computes it, with the same merge functions the adapter policies use:
///        for writers that stream a checkpoint (io/gguf_export.hpp) without building the model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/adapters/dora.hpp"
#include "polyalpaca/adapters/ia3.hpp"
#include "polyalpaca/adapters/lora.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"

namespace polyalpaca::io {

class PeftMerge {
public:
    enum class Kind { lora, dora, ia3 };

    /// The adapter in `dir` (adapter_config.json, adapter_model.safetensors, or a run's output holding them under
    /// adapter/). A setting this merge does not compute (fan_in_fan_out, per-module rank or alpha patterns, LoRA
    /// biases, an unknown peft_type) or a tensor that is not one of the adapter's is an error naming the file.
    static PeftMerge open(std::filesystem::path const& dir) {
        PeftMerge m;
        m.config_file_ = (dir / "adapter_config.json").string();
        auto const c = read_json_file(dir / "adapter_config.json");
        require(c.is_object(), m.config_file_, ": a ", c.type_name(), ", not a JSON object");
        auto setting = [&](char const* key) -> nlohmann::json {
            auto const it = c.find(key);
            return it == c.end() ? nlohmann::json() : *it;
        };
        require(setting("peft_type").is_string() || setting("peft_type").is_null(), m.config_file_,
                ": peft_type is not a string");
        auto const type = setting("peft_type").is_string() ? setting("peft_type").get<std::string>() : std::string();
        require(!setting("fan_in_fan_out").is_boolean() || !setting("fan_in_fan_out").get<bool>(), m.config_file_,
                ": fan_in_fan_out is true (Conv1D weights), which no family here has");
        std::vector<std::string_view> suffixes;
        if (type == "LORA") {
            for (char const* key : {"rank_pattern", "alpha_pattern"})
                require(!setting(key).is_object() || setting(key).empty(), m.config_file_, ": ", key,
                        " is set; the merge takes one rank and alpha for every module");
            require(!setting("lora_bias").is_boolean() || !setting("lora_bias").get<bool>(), m.config_file_,
                    ": lora_bias is true; the merge adds no LoRA bias");
            require(setting("r").is_number() && setting("lora_alpha").is_number(), m.config_file_,
                    ": r and lora_alpha are needed to merge a LoRA");
            double const r = setting("r").get<double>(), alpha = setting("lora_alpha").get<double>();
            bool const rslora = setting("use_rslora").is_boolean() && setting("use_rslora").get<bool>();
            m.scale_ = rslora ? alpha / std::sqrt(r) : alpha / r;
            m.kind_ = setting("use_dora").is_boolean() && setting("use_dora").get<bool>() ? Kind::dora : Kind::lora;
            suffixes = {".lora_A.weight", ".lora_B.weight"};
            if (m.kind_ == Kind::dora) suffixes.push_back(".lora_magnitude_vector");
        } else if (type == "IA3") {
            m.kind_ = Kind::ia3;
            suffixes = {".ia3_l"};
        } else {
            fail(m.config_file_, ": peft_type '", type, "' cannot be merged (LORA, with or without DoRA, and IA3 can)");
        }
        auto const weights = dir / "adapter_model.safetensors";
        auto const file = SafetensorsCheckpoint::open(weights);
        constexpr std::string_view prefix = "base_model.model.";
        for (auto const& t : file.tensors()) {
            std::string_view const n = t.name;
            auto const suffix = std::find_if(suffixes.begin(), suffixes.end(), [&](auto s) { return n.ends_with(s); });
            require(n.starts_with(prefix) && suffix != suffixes.end(), weights.string(), ": tensor '",
                    printable_excerpt(t.name), "' is not a ", m.kind_name(), " tensor of a linear layer");
            std::string const module(n.substr(prefix.size(), n.size() - prefix.size() - suffix->size()));
            require(t.shape.size() <= 2 && is_float_dtype(t.dtype), weights.string(), ": tensor '",
                    printable_excerpt(t.name), "' ", shape_string(t.shape), " ", dtype_name(t.dtype),
                    " is not a float vector or matrix");
            Index const rows = t.shape.size() == 2 ? t.shape[0] : t.shape.empty() ? 1 : t.shape[0];
            Index const cols = t.shape.size() == 2 ? t.shape[1] : 1;
            std::vector<float> values(std::size_t(rows * cols));
            file.read(t.name, std::span<float>(values));
            m.modules_[module].module = module;
            m.modules_[module].tensors.push_back({std::string(*suffix), rows, cols, std::move(values)});
        }
        require(!m.modules_.empty(), weights.string(), ": holds no adapter tensors");
        for (auto const& [name, module] : m.modules_)
            for (auto s : suffixes)
                require(std::any_of(module.tensors.begin(), module.tensors.end(),
                                    [&](auto const& t) { return t.suffix == s; }),
                        weights.string(), ": '", name, "' has no ", s.substr(1), " tensor");
        return m;
    }

    Kind kind() const { return kind_; }
    char const* kind_name() const { return kind_ == Kind::lora ? "LoRA" : kind_ == Kind::dora ? "DoRA" : "IA3"; }
    std::size_t modules() const { return modules_.size(); }
    std::string const& config_file() const { return config_file_; }

    /// Checks before any work that the base checkpoint `base` (its tensors' names and (rows, cols)) holds the weight
    /// of every adapted module, with the shape the adapter's tensors fit; an error names the module otherwise.
    void check_base(std::map<std::string, std::pair<std::int64_t, std::int64_t>> const& shapes,
                    std::string const& base) const {
        for (auto const& adapted : modules_) {
            auto const& name = adapted.first;
            auto const& module = adapted.second;  // not a structured binding: lambdas capture it (clang 14)
            auto it = shapes.find(name + ".weight");
            if (it == shapes.end() && name.starts_with("transformer."))
                it = shapes.find(name.substr(std::string_view("transformer.").size()) + ".weight");
            require(it != shapes.end(), config_file_, ": the adapter adapts '", name, ".weight', which the base ", base,
                    " does not hold (an adapter of another base?)");
            auto const [rows, cols] = it->second;
            auto fits = [&](std::string_view suffix, Index r, Index c) {
                auto const& t = module.tensor(suffix);
                return (r < 0 || t.rows == r) && (c < 0 || t.cols == c);
            };
            bool const ok = kind_ == Kind::ia3
                                ? fits(".ia3_l", rows, 1) || fits(".ia3_l", 1, cols)
                                : fits(".lora_A.weight", -1, cols) && fits(".lora_B.weight", rows, -1) &&
                                      module.tensor(".lora_A.weight").rows == module.tensor(".lora_B.weight").cols &&
                                      (kind_ == Kind::lora || module.tensor(".lora_magnitude_vector").rows *
                                                                      module.tensor(".lora_magnitude_vector").cols ==
                                                                  rows);
            require(ok, config_file_, ": the ", kind_name(), " tensors of '", name, "' do not fit its base weight (",
                    rows, ", ", cols, ") in ", base, " (an adapter of another base?)");
        }
    }

    /// Merges the adapter into `values`, the base tensor `name` ("<module>.weight" or ".bias") of shape (rows, cols)
    /// in HF's row-major layout, when the adapter adapts its module; other tensors are left as they are. BLOOM's own
    /// checkpoints name weights without "transformer.", which PEFT's module names have.
    void apply(std::string const& name, std::span<float> values, std::int64_t rows, std::int64_t cols) const {
        auto const dot = name.rfind('.');
        if (dot == std::string::npos) return;
        auto it = modules_.find(name.substr(0, dot));
        if (it == modules_.end()) it = modules_.find("transformer." + name.substr(0, dot));
        if (it == modules_.end()) return;
        auto const& module = it->second;
        auto const leaf = name.substr(dot + 1);
        if (leaf == "weight") {
            Eigen::Map<Matrix<float>> w(values.data(), rows, cols);
            if (kind_ == Kind::lora) lora_detail::add_low_rank(module, w, scale_);
            if (kind_ == Kind::dora) dora_merge(module, w, scale_);
            if (kind_ == Kind::ia3) ia3_merge(module, w, static_cast<float*>(nullptr));
        } else if (leaf == "bias" && kind_ == Kind::ia3 && module.tensor(".ia3_l").rows > 1) {
            // An attention site's bias scales with its rows: ia3_merge on a weight of no columns.
            ia3_merge(module, Eigen::Map<Matrix<float>>(nullptr, Index(values.size()), 0), values.data());
        }
    }

private:
    Kind kind_ = Kind::lora;
    double scale_ = 0;
    std::string config_file_;
    std::map<std::string, AdaptedModule<float>> modules_;
};

}  // namespace polyalpaca::io
