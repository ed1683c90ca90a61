/// @file study/memory_table.hpp
/// @brief The model-dependent figures of a study's plan for every preset it may name (study/presets.hpp), by name:
///        the predicted memory of a run (train/memory_plan.hpp: the layers' own accounting on the dry-run backend)
///        and the training FLOP cost per sequence (train/flops.hpp). No engine is needed, so a runner plans studies
///        of presets it was not compiled for.
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include "polyalpaca/generate/config.hpp"
#include "polyalpaca/study/presets.hpp"
#include "polyalpaca/study/study_file.hpp"
#include "polyalpaca/train/flops.hpp"
#include "polyalpaca/train/memory_plan.hpp"

namespace polyalpaca::study {

/// A method's FLOP cost per sequence ("lora", "dora", "ia3" or "full").
using FlopCostOf = std::function<FlopCost(std::string const& method)>;

/// Where a study's runs are planned: the backend ("cpu" or "cuda") and, on CUDA, the attention kernels asked for and
/// whether LoRA networks keep their frozen matrices in bf16 only (the study engine's choices).
struct PlanDevice {
    std::string backend = "cpu";
    std::string attention = "auto";
    bool frozen_in_bf16 = true;
    std::string gemm_math;  ///< as --gemm-math ("" for the backend's own)
    int ranks = 1;  ///< data-parallel ranks a run is spread over (memory is planned per rank)
    bool zero1 = false;  ///< the runs shard AdamW's state over the ranks (the fit check plans that way)
};

namespace memory_table_detail {

/// Calls f.template operator()<Model>() for the model type of (preset, method); an unknown preset is an Error.
template <class F>
auto with_model(std::string const& preset, std::string const& method, F&& f) {
    using Result = decltype(f.template operator()<preset::BloomStudy::Full>());
    std::optional<Result> out;
    for_each_preset([&]<class P>() {
        if (P::name != preset || out) return;
        out = with_method_model<P>(method, f);
    });
    require(out.has_value(), "\"", preset, "\" is not a preset polyalpaca knows (", known_preset_names(), ")");
    return *out;
}

/// The device a plan is made for. CPU bf16 is planned as asked even on a CPU that would refuse it (a plan made on
/// one machine for another); "auto" plans what this CPU would pick.
inline Device device_of(PlanDevice const& d) {
    if (d.backend == "cpu") {
        bool const bf16 = d.gemm_math == "bf16" || (d.gemm_math == "auto" && cpu::bf16_gemms_missing().empty());
        return Device::cpu(bf16 ? cpu::GemmMath::Bf16 : cpu::GemmMath::Fp32);
    }
    auto const kernel = d.attention == "flash" ? cuda::AttentionKernel::Flash
                        : d.attention == "gemm" ? cuda::AttentionKernel::Gemm
                                                : cuda::AttentionKernel::Auto;
    return Device::gpu(kernel, d.gemm_math.empty() ? cuda::GemmMath::Bf16
                                                   : cuda::gemm_math_from_name(d.gemm_math, "--gemm-math"));
}

}  // namespace memory_table_detail

/// The shapes a run of `method` trains and decodes at in study `s`: its micro-batch at the cutoff, and the study's
/// decoding (batch, the preset's beams and new tokens) of prompts of `prompt_tokens` (unknown: as long as the cutoff
/// allows).
inline MemoryPlanOptions memory_plan_options(StudyFile const& s, std::string const& method, int max_positions,
                                             std::optional<int> prompt_tokens = std::nullopt) {
    auto const& h = s.hyperparameters.at(method);
    require_room_for_prompts(s, method, max_positions);
    auto const decoding = GenerationConfig::from_name(s.decoding.preset_for(method));
    MemoryPlanOptions o;
    o.micro_batch = int(h.micro_batch);
    o.seq = int(h.cutoff);
    o.adapter_dropout = method == "full" ? 0.0 : h.lora_dropout;  // an adapter without dropout (IA3) ignores it
    o.decode_batch = int(s.decoding.batch);
    o.beams = std::max(1, decoding.num_beams);
    o.new_tokens = decoding_new_tokens(s, method);
    o.prompt_tokens = std::max(1, std::min(prompt_tokens.value_or(int(h.cutoff)), max_positions - o.new_tokens));
    return o;
}

/// The predicted memory of a run of `method` of study `s` (its base model's preset) on `device`, decoding prompts of
/// `prompt_tokens` (see above); over several ranks, of one rank, holding AdamW's state as `sharding` says.
inline MemoryPlan plan_memory(StudyFile const& s, std::string const& method, PlanDevice const& device,
                              std::optional<int> prompt_tokens = std::nullopt,
                              distributed::OptimizerSharding sharding = distributed::OptimizerSharding::Replicated) {
    return memory_table_detail::with_model(s.preset, method, [&]<class Model>() {
        auto options = memory_plan_options(s, method, Model::config::max_positions, prompt_tokens);
        options.frozen_in_bf16 = device.frozen_in_bf16;
        options.ranks = device.ranks;
        options.sharding = sharding;
        return polyalpaca::plan_memory<Model>(memory_table_detail::device_of(device), options);
    });
}

/// The training FLOPs per sequence of a run of `method` on study `s`'s base model.
inline FlopCost flop_cost_of(StudyFile const& s, std::string const& method) {
    return memory_table_detail::with_model(s.preset, method, [&]<class Model>() { return flop_cost<Model>(); });
}

}  // namespace polyalpaca::study
