/// @file study/engine.hpp
/// @brief The model side of a study on one device, behind an interface that names no model type or backend: the
///        networks of both methods built from base weights read once, trained, saved, loaded back, decoded and
///        scored. The driver (study/driver.hpp) speaks to it in token ids. Each (preset, backend) engine is
///        compiled in a translation unit of its own (study/model_engine.hpp, examples/study_engine.cpp.in) and
///        found through the runner's table of compiled engines (study/engine_registry.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/backend/device_info.hpp"
#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/data/examples.hpp"
#include "polyalpaca/data/mixture.hpp"
#include "polyalpaca/generate/config.hpp"
#include "polyalpaca/generate/generate.hpp"
#include "polyalpaca/train/trainer.hpp"

namespace polyalpaca::study {

/// Where a study's networks run, as run_config.json, the report and --plan record it.
struct DeviceDescription {
    DeviceInfo info;        ///< "cpu" or "cuda:N", the model name, memory
    std::string backend;    ///< the backend policy's name: "cpu-eigen" or "cuda"
    std::string gemm_math;  ///< "fp32" on the CPU; "bf16", "tf32" or "fp32" on CUDA
    std::string attention;  ///< the attention kernels that run for this model: "cpu", "flash" or "gemm"
    std::string frozen_weights = "fp32";  ///< how LoRA networks keep their frozen weights: "fp32", or "bf16" only
    int threads = 0;  ///< CPU threads the backend computes on (a run's figures depend on it); 0 on a GPU
    /// What measured_peak_bytes() measures: the GPU's allocations, or the process's whole resident set on the CPU
    /// (data and program included, so it reads above the plan, which counts the network's memory).
    std::string peak_measure = "process peak resident set";

    nlohmann::json to_json() const {
        return {{"device", info.device}, {"device_name", info.name}, {"backend", backend},
                {"gemm_math", gemm_math}, {"attention", attention}, {"frozen_weights", frozen_weights},
                {"threads", threads}};
    }
    /// "cuda:0 (NVIDIA H100 80GB HBM3), GEMM math bf16, attention flash, frozen weights bf16"; on the CPU
    /// "..., frozen weights fp32, 2 CPU threads"
    std::string describe() const {
        return info.device + (info.name.empty() ? "" : " (" + info.name + ")") + ", GEMM math " + gemm_math +
               ", attention " + attention + ", frozen weights " + frozen_weights +
               (threads > 0 ? ", " + std::to_string(threads) + " CPU thread" + (threads > 1 ? "s" : "") : "");
    }
};

/// One training: a mixture over example lists (examples[pool] for the mixture's pool `pool`), the held-out
/// examples per language, the trainer's options (the engine fills in the model's FLOP cost) and where the
/// trained weights go.
struct TrainJob {
    std::string method;  ///< "lora", "dora", "ia3" or "full"
    Mixture const& mixture;
    std::vector<std::vector<Example>> const& examples;
    std::vector<std::pair<std::string, std::vector<Example>>> const& validation;
    TrainerOptions options;
    /// The PEFT adapter (LoRA, adapter/) or HF model (full, model/) is saved here after load_best.
    std::filesystem::path weights_dir;
    /// PEFT's base_model_name_or_path for a LoRA adapter.
    std::string base_model_name;
};

/// The networks of one base model on one device. Stateful: generate() and loss() use the network of the last
/// train(), pretrain() or load().
class StudyEngine {
public:
    virtual ~StudyEngine() = default;

    virtual DeviceDescription const& device() const = 0;
    virtual int vocab() const = 0;
    virtual int max_positions() const = 0;

    /// The HF directory every network starts from ("" : random weights drawn from the seed). It is read once,
    /// when a network first needs it; networks of either method are then reset from memory between runs.
    virtual void set_base(std::filesystem::path const& dir) = 0;
    /// Trains the method's network from the base weights (resuming from a checkpoint in the job's output
    /// directory when there is one), loads the best checkpoint and saves it into job.weights_dir.
    virtual TrainResult train(TrainJob const& job) = 0;
    /// Trains the full-parameter model from random weights (job.method "full"); saves it into job.weights_dir.
    virtual TrainResult pretrain(TrainJob const& job) = 0;
    /// The method's network with the base weights and a run's saved weights (its adapter/ or model/ directory;
    /// "" : the base weights alone).
    virtual void load(std::string const& method, std::filesystem::path const& weights) = 0;

    /// Decodes prompts (token ids) with the current network.
    virtual std::vector<Generated> generate(std::span<std::vector<std::int32_t> const> prompts,
                                            GenerationConfig const& config) = 0;
    /// Summed token loss of one batch under the current network (dropout off).
    virtual BatchLoss loss(TokenBatch const& batch) = 0;

    /// The most memory the engine's work has held so far on its device, as measured (the GPU's allocations
    /// sampled after each training and decoding, cuda/memory_watch.cuh; on the CPU the process's peak resident set).
    virtual std::size_t measured_peak_bytes() = 0;

    /// How many times the base checkpoint was read from disk: once per study, unless no host copy is kept and
    /// the methods alternate.
    virtual int base_reads() const = 0;

    /// Data parallel (EngineOptions::data_parallel): this process's rank and the number of ranks that train
    /// together; 0 and 1 otherwise. Rank 0 alone writes what train() and pretrain() save.
    virtual int rank() const = 0;
    virtual int ranks() const = 0;
    /// Rank 0's `value` on every rank: how rank 0 tells the others what the study does next (study/driver.hpp).
    virtual long long from_rank0(long long value) = 0;
};

/// What every engine of a runner is built with.
struct EngineOptions {
    std::uint64_t seed = 42;
    /// Keep a host copy of the base weights: needed when a full-parameter network must start from the base again
    /// (more than one full run, or both methods). A LoRA network keeps its frozen base itself.
    bool keep_base_on_host = true;
    /// Adapter dropout by method ("lora", "dora": PEFT lora_dropout); a method not named takes 0.05.
    std::map<std::string, double> adapter_dropout;
    int cuda_device = 0;
    std::string attention = "auto";  ///< CUDA: auto, gemm or flash
    std::string gemm_math;           ///< "" keeps the backend's own (train/kernel_record.hpp, select_gemm_math)
    /// CUDA: a LoRA network keeps its frozen weight matrices in bf16 only (cuda::FrozenInBf16), a third of fp32 and
    /// its working copy; the results are the same.
    bool frozen_in_bf16 = true;
    /// Train data parallel over the ranks of the launcher that started this process (mpirun, srun): MPI on the CPU,
    /// NCCL on GPUs, one rank per GPU (cuda_device is then the rank's). Needs a runner built with MPI.
    bool data_parallel = false;
    /// With data_parallel: AdamW's state sharded over the ranks (ZeRO-1).
    bool zero1 = false;
};

}  // namespace polyalpaca::study
