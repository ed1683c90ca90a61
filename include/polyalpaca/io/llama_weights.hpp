/// @file io/llama_weights.hpp
/// @brief Fills a LLaMA CausalLm's base weights by HF name from Meta-layout checkpoints (llama2.c, GGUF).
#pragma once

#include <cstring>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/adapters/adapter.hpp"  // base_role: models/causal_lm.hpp uses it without including it
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/rope_permutation.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/llama.hpp"

namespace polyalpaca::io {

/// Meta-layout sources store q_proj / k_proj rows for interleaved rotary pairs. A model type with
/// RopeStyle::AdjacentPairs takes them as they are; one with RotateHalf gets them through permute_meta_to_hf.
/// Every base weight of the model must be set exactly once before finish().
template <class Model, class Backend, class T>
class LlamaWeightLoader {
public:
    using Net = CausalLm<Model, Backend, T>;
    using Config = typename Net::Config;

    LlamaWeightLoader(typename Backend::Context& ctx, Net& net, std::string source)
        : ctx_(ctx), net_(net), source_(std::move(source)) {
        static_assert(std::string_view(Model::family) == "llama", "these checkpoints load into Llama<...> models");
    }

    /// The model's parameter called `hf_name`; an Error when the model has none.
    Parameter<T>& parameter(std::string const& hf_name) {
        auto* p = net_.parameters().find(hf_name);
        require(p != nullptr, source_, ": the model has no parameter '", hf_name, "'");
        return *p;
    }

    /// Sets `hf_name` from `values` (row-major, HF shape, Meta rotary layout for q/k).
    void set(std::string const& hf_name, std::span<T const> values) {
        auto& p = parameter(hf_name);
        require(Index(values.size()) == p.size(), source_, ": '", hf_name, "' gets ", values.size(),
                " values but has shape (", p.rows, ", ", p.cols, ")");
        require(done_.insert(hf_name).second, source_, ": '", hf_name, "' is set twice");
        host_.assign(values.begin(), values.end());
        if constexpr (Config::rope_style == RopeStyle::RotateHalf) {
            if (ends_with(hf_name, ".self_attn.q_proj.weight"))
                permute_meta_to_hf_in_place(View<T>(host_.data(), p.rows, p.cols), Config::heads);
            else if (ends_with(hf_name, ".self_attn.k_proj.weight"))
                permute_meta_to_hf_in_place(View<T>(host_.data(), p.rows, p.cols), Config::kv_heads);
        }
        Backend::upload(ctx_, host_.data(), p.value, host_.size());
    }

    /// Throws unless every base weight was set (adapter weights, which base checkpoints do not hold, keep their
    /// values), naming the first ones missing; then derives what starts from the base (DoRA's magnitude).
    void finish() const {
        std::string missing;
        int count = 0;
        for (auto const* p : net_.parameters().parameters()) {
            if (p->of_adapter() || done_.contains(p->name)) continue;
            if (++count <= 5) missing += (missing.empty() ? "'" : ", '") + p->name + "'";
        }
        require(count == 0, source_, ": ", count, " model weight(s) not found in the file: ", missing,
                count > 5 ? ", ..." : "");
        net_.parameters().initialise_derived(ctx_);
    }

private:
    static bool ends_with(std::string const& s, std::string_view suffix) {
        return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
    }

    typename Backend::Context& ctx_;
    Net& net_;
    std::string source_;
    std::set<std::string> done_;
    std::vector<T> host_;
};

}  // namespace polyalpaca::io
