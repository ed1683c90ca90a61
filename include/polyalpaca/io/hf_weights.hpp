/// @file io/hf_weights.hpp
/// @brief Base weights in and out of HF checkpoints: load_hf_weights by HF names, save_hf_checkpoint.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/io/safetensors.hpp"
#include "polyalpaca/models/causal_lm.hpp"

namespace polyalpaca::io {

/// Buffers HF checkpoints carry that are not weights (causal masks, rotary frequencies): skipped silently.
inline bool is_known_buffer(std::string_view name) {
    for (std::string_view suffix :
         {".attention.bias", ".attention.masked_bias", ".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq"})
        if (name.ends_with(suffix)) return true;
    return false;
}

namespace detail {

/// The checkpoint tensor holding parameter `name`: itself, or under the other name a family's files use for it
/// (models/<family>.hpp, `Hf::checkpoint_alias`: BLOOM's own files drop "transformer.").
template <class Weights>
TensorInfo const* find_hf_tensor(Weights const& ckpt, std::string const& name) {
    if (auto const* t = ckpt.find(name)) return t;
    TensorInfo const* found = nullptr;
    for_each_hf_family([&]<class Hf>() {
        if (auto const alias = Hf::checkpoint_alias(name); !found && !alias.empty()) found = ckpt.find(alias);
    });
    return found;
}

/// load_hf_weights from a SafetensorsFile or a SafetensorsCheckpoint (both have path, find, tensors, read).
template <class Backend, class T, class Weights>
std::string load_hf_weights_from(typename Backend::Context& ctx, ParameterStore<Backend, T>& store,
                                 Weights const& ckpt) {
    std::string const where = "checkpoint '" + ckpt.path().string() + "': ";
    std::set<std::string> used;
    std::vector<std::string> missing;
    for (auto* p : store.parameters()) {
        if (p->of_adapter()) continue;
        auto const* t = detail::find_hf_tensor(ckpt, p->name);
        if (!t) {
            missing.push_back(p->name);
            continue;
        }
        used.insert(t->name);
        load_parameter<Backend>(ctx, *p, ckpt, *t, where);
    }
    if (!missing.empty())
        fail(where, "lacks ", missing.size(), " of the model's ", store.parameters().size(),
             " tensors: ", name_list(missing));
    store.initialise_derived(ctx);  // adapter weights that start from the base (DoRA's magnitude) follow it

    std::vector<std::string> unexpected;
    for (auto const& t : ckpt.tensors()) {
        if (used.count(t.name) || is_known_buffer(t.name)) continue;
        if (t.name == "lm_head.weight" && !store.find("lm_head.weight")) {  // a tied model: must equal the embedding
            Parameter<T> const* embedding = nullptr;
            for_each_hf_family([&]<class Hf>() {
                if (!embedding) embedding = store.find(Hf::embedding_weight);
            });
            if (embedding) {
                require(shape_matches(*embedding, t), where, "lm_head.weight has shape ", shape_string(t.shape),
                        " but the tied word embeddings are ", shape_string(hf_shape(*embedding)));
                std::vector<T> head(std::size_t(embedding->size()));
                ckpt.read(t.name, std::span<T>(head));
                require(head == download<Backend>(ctx, *embedding), where,
                        "lm_head.weight differs from the word embeddings, but the model ties its head to them "
                        "(an untied checkpoint: use a model type with an untied head)");
                continue;
            }
        }
        unexpected.push_back(t.name);
    }
    if (unexpected.empty()) return "";
    return where + std::to_string(unexpected.size()) + " tensors the model does not use: " + name_list(unexpected);
}

}  // namespace detail

/// Fills every base parameter of `store` from the tensor of its HF name (adapter weights are not expected in a base
/// checkpoint and keep their values, but those derived from the base, DoRA's magnitude, are derived again: load the
/// base before an adapter). Throws one Error listing every missing tensor, or naming a tensor of the
/// wrong shape or dtype. Returns a warning listing tensors the model does not use ("" when there are none);
/// known buffers are skipped, and a tied model accepts an lm_head.weight equal to its word embeddings.
template <class Backend, class T>
std::string load_hf_weights(typename Backend::Context& ctx, ParameterStore<Backend, T>& store,
                            SafetensorsCheckpoint const& ckpt) {
    return detail::load_hf_weights_from(ctx, store, ckpt);
}
/// The same from one .safetensors file.
template <class Backend, class T>
std::string load_hf_weights(typename Backend::Context& ctx, ParameterStore<Backend, T>& store,
                            SafetensorsFile const& file) {
    return detail::load_hf_weights_from(ctx, store, file);
}

/// Opens the checkpoint in `dir` and loads it (see above).
template <class Backend, class T>
std::string load_hf_weights(typename Backend::Context& ctx, ParameterStore<Backend, T>& store,
                            std::filesystem::path const& dir) {
    return load_hf_weights(ctx, store, SafetensorsCheckpoint::open(dir));
}

namespace detail {

/// Writes `tensors` as `dir`/model.safetensors and `config` (with its dtype keys set) as `dir`/config.json, each
/// atomically.
inline void write_hf_checkpoint(std::filesystem::path const& dir, std::vector<TensorToWrite> const& tensors,
                                nlohmann::json config, DType dtype) {
    std::string const where = "cannot save a checkpoint in '" + dir.string() + "': ";
    require(config.is_object(), where, "config is not a JSON object");
    std::filesystem::create_directories(dir);
    require(!std::filesystem::exists(dir / SafetensorsCheckpoint::index_file_name), where, "it holds ",
            SafetensorsCheckpoint::index_file_name, ", which would shadow model.safetensors");
    write_safetensors(dir / SafetensorsCheckpoint::single_file_name, tensors, {{"format", "pt"}});
    config["torch_dtype"] = std::string(torch_dtype_name(dtype));
    config["dtype"] = config["torch_dtype"];
    write_file_atomically(dir / "config.json", config.dump(2) + "\n");
}

}  // namespace detail

/// Writes `store`'s weights as `dir`/model.safetensors (HF names and shapes, `dtype`) and `config` as
/// `dir`/config.json, each atomically. A store with adapter weights is refused: merge it first (io/adapter_merge.hpp).
template <class Backend, class T>
void save_hf_checkpoint(typename Backend::Context& ctx, ParameterStore<Backend, T> const& store,
                        std::filesystem::path const& dir, nlohmann::json config, DType dtype = DType::F32) {
    std::vector<std::vector<float>> values;
    values.reserve(store.parameters().size());
    std::vector<TensorToWrite> tensors;
    for (auto const* p : store.parameters()) {
        require(!p->of_adapter(), "cannot save a checkpoint in '", dir.string(), "': ", p->name,
                " is an adapter weight: merge the adapter into a model without "
                "one first (save_merged_hf_checkpoint, merge_adapter), or save it with save_peft_adapter");
        values.push_back(download_as_float<Backend>(ctx, *p));
        tensors.push_back({p->name, dtype, hf_shape(*p), values.back()});
    }
    detail::write_hf_checkpoint(dir, tensors, std::move(config), dtype);
}

/// Loads an HF checkpoint directory into `net` after checking its config.json against Model; returns the warning.
template <class Model, class Backend, class T>
std::string load_hf_checkpoint(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                               std::filesystem::path const& dir) {
    check_config<Model>(dir / "config.json");
    return load_hf_weights(ctx, net.parameters(), SafetensorsCheckpoint::open(dir));
}

/// Saves `net` (without an adapter) with the config.json transformers needs for Model.
template <class Model, class Backend, class T>
void save_hf_checkpoint(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net,
                        std::filesystem::path const& dir, DType dtype = DType::F32) {
    save_hf_checkpoint(ctx, net.parameters(), dir, hf_config_json<Model>(dtype), dtype);
}

}  // namespace polyalpaca::io
