/// @file study/model_engine.hpp
/// @brief ModelEngine<Full, Backend, std::tuple<Adapted...>>: the StudyEngine of one base model on one backend,
///        training Full (full-parameter) and the adapted models (one per adapter method: LoRA, DoRA, IA3; a
///        StudyPreset's Adapted). It owns the backend's
///        context for the whole study and at most one network at a time (switching method frees the other's
///        memory). The base checkpoint is read from disk once: an adapted network keeps it in its frozen weights
///        from run to run (only the adapter is drawn again), and when the study trains several methods a host copy
///        restores the base into a network whose weights a run changed, or into another method's new network.
///        Include it only in the translation unit that instantiates one engine (examples/study_engine.cpp.in):
///        with the Cuda backend that is a .cu file.
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/distributed/any_communicator.hpp"
#if defined(POLYALPACA_STUDY_MPI)  // the runner's build found MPI (cmake/PolyalpacaStudy.cmake)
#include "polyalpaca/distributed/mpi.hpp"
#endif
#if defined(POLYALPACA_STUDY_NCCL)  // and NCCL, in a CUDA engine's translation unit
#include "polyalpaca/distributed/nccl.cuh"
#endif
#include "polyalpaca/io/hf_weights.hpp"
#include "polyalpaca/io/peft.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/study/engine.hpp"
#include "polyalpaca/train/flops.hpp"
#include "polyalpaca/train/kernel_record.hpp"
#include "polyalpaca/train/trainer.hpp"

namespace polyalpaca::study {

namespace engine_detail {

/// The device a backend's context runs on: the host for CpuEigen, the context's GPU for Cuda (whose
/// device_info(ctx) is found by argument-dependent lookup in a .cu translation unit).
template <class Backend>
DeviceInfo device_of(typename Backend::Context& ctx) {
    if constexpr (requires { device_info(ctx); }) return device_info(ctx);
    else return cpu::host_device_info();
}

/// The ranks an engine trains with: one (SingleProcess), or with EngineOptions::data_parallel the launcher's, over
/// MPI on the CPU and NCCL on GPUs.
template <class Backend>
std::unique_ptr<distributed::AnyCommunicator<typename Backend::Context>> make_communicator(EngineOptions const& o) {
    using Any = distributed::AnyCommunicator<typename Backend::Context>;
    if (!o.data_parallel) return std::make_unique<Any>(std::make_unique<distributed::SingleProcess>());
    if constexpr (ChoosesKernels<typename Backend::Context>) {
#if defined(POLYALPACA_STUDY_NCCL)
        return std::make_unique<Any>(std::make_unique<distributed::Nccl>());
#else
        fail("data parallel on GPUs needs NCCL, which this polyalpaca_study was built without (cmake finds it in "
             "the CUDA toolkit, with MPI: apt-get install libopenmpi-dev openmpi-bin)");
#endif
    } else {
#if defined(POLYALPACA_STUDY_MPI)
        return std::make_unique<Any>(std::make_unique<distributed::Mpi>());
#else
        fail("data parallel needs MPI, which this polyalpaca_study was built without (apt-get install "
             "libopenmpi-dev openmpi-bin, then configure again)");
#endif
    }
}

/// The context of a backend: CpuEigen's default, Cuda's on `cuda_device`, with the attention kernels (checked to be
/// compiled for the model's head_dim) and GEMM math asked for.
template <class Backend>
std::unique_ptr<typename Backend::Context> make_context(EngineOptions const& o, int head_dim) {
    using Context = typename Backend::Context;
    std::unique_ptr<Context> ctx;
    if constexpr (ChoosesKernels<Context>) ctx = std::make_unique<Context>(o.cuda_device);
    else ctx = std::make_unique<Context>();
    select_attention_kernel<Backend>(*ctx, o.attention);
    if (!o.gemm_math.empty()) select_gemm_math<Backend>(*ctx, o.gemm_math);
    require_attention_compiled<Backend>(*ctx, head_dim);
    return ctx;
}

/// What keeps a LoRA network's frozen matrices in bf16 only on this backend (Cuda's FrozenWeightsInBf16), held
/// beside the network; nothing on a backend without one.
template <class Backend>
struct FrozenStorage {
    using type = std::monostate;
    static constexpr bool exists = false;
};
template <class Backend>
    requires requires { typename Backend::FrozenWeightsInBf16; }
struct FrozenStorage<Backend> {
    using type = std::optional<typename Backend::FrozenWeightsInBf16>;
    static constexpr bool exists = true;
};

}  // namespace engine_detail

template <class Full, class Backend, class AdaptedModels>
class ModelEngine;

template <class Full, class Backend, class... Adapted>
class ModelEngine<Full, Backend, std::tuple<Adapted...>> final : public StudyEngine {
    static_assert(!has_adapter_weights<typename Full::adapter> && (has_adapter_weights<typename Adapted::adapter> && ...),
                  "ModelEngine: Full has no adapter, each Adapted the adapter of a method");
    static_assert(((std::is_same_v<typename Full::config, typename Adapted::config>) && ...),
                  "ModelEngine: every model must be the same base model");

public:
    using Context = typename Backend::Context;
    using FullNet = CausalLm<Full, Backend, float>;
    static constexpr int head_dim = attention_head_dim<Full>;

    explicit ModelEngine(EngineOptions options)
        : options_(std::move(options)),
          world_(engine_detail::make_communicator<Backend>(options_)),
          meter_(device_of_rank()),
          ctx_(engine_detail::make_context<Backend>(options_, head_dim)) {
        device_.info = engine_detail::device_of<Backend>(*ctx_);
        device_.backend = Backend::name;
        device_.gemm_math = gemm_math_name<Backend>(*ctx_);
        device_.attention = attention_that_runs<Backend>(*ctx_, head_dim);
        device_.frozen_weights =
            engine_detail::FrozenStorage<Backend>::exists && options_.frozen_in_bf16 ? "bf16" : "fp32";
        if constexpr (ChoosesKernels<Context>) device_.peak_measure = "GPU allocations";
        if constexpr (requires { ctx_->threads; }) device_.threads = std::max(1, ctx_->threads);
    }

    DeviceDescription const& device() const override { return device_; }
    int vocab() const override { return Full::config::vocab; }
    int max_positions() const override { return Full::config::max_positions; }

    int base_reads() const override { return base_reads_; }
    int rank() const override { return world_->rank(); }
    int ranks() const override { return world_->size(); }
    long long from_rank0(long long value) override { return distributed::from_rank0(*world_, value); }
    std::size_t measured_peak_bytes() override {
        meter_.sample();
        return meter_.peak();
    }

    void set_base(std::filesystem::path const& dir) override {
        base_dir_ = dir;
        base_.clear();
        free_networks();
    }

    TrainResult train(TrainJob const& job) override {
        return with_slot(job.method, [&](auto& slot) { return train_net(network(slot), job); });
    }

    TrainResult pretrain(TrainJob const& job) override {
        require(job.method == "full", "pretrain: the full-parameter model is pretrained, not \"", job.method, "\"");
        free_networks();
        auto net = std::make_unique<FullNet>(*ctx_, NetworkOptions{.seed = options_.seed});  // random, not the base
        auto result = fit(*net, job, /*load_best*/ false);  // the last weights, as a pretraining run ends
        if (rank() == 0) io::save_hf_checkpoint(*ctx_, *net, job.weights_dir, io::DType::F32);
        distributed::barrier(*world_);  // the others may read the weights next
        return result;
    }

    void load(std::string const& method, std::filesystem::path const& weights) override {
        with_slot(method, [&](auto& slot) { load_into(network(slot), weights); });
    }

    std::vector<Generated> generate(std::span<std::vector<std::int32_t> const> prompts,
                                    GenerationConfig const& config) override {
        require(current_ != nullptr, "the study engine has no network to decode with: train or load one first");
        auto out = current_->generate(*ctx_, prompts, config);
        meter_.sample();
        return out;
    }

    BatchLoss loss(TokenBatch const& batch) override {
        require(current_ != nullptr, "the study engine has no network to score with: train or load one first");
        return current_->loss(*ctx_, batch);
    }

private:
    /// The network in use, whichever method it is.
    struct Current {
        virtual ~Current() = default;
        virtual std::vector<Generated> generate(Context&, std::span<std::vector<std::int32_t> const>,
                                                GenerationConfig const&) = 0;
        virtual BatchLoss loss(Context&, TokenBatch const&) = 0;
    };

    /// A network and whether a run changed its trainable weights since it held the base and fresh ones.
    template <class Model>
    struct Held final : Current {
        Held(Context& ctx, NetworkOptions const& options) : net(ctx, options) {}
        CausalLm<Model, Backend, float> net;
        typename engine_detail::FrozenStorage<Backend>::type frozen;  // after net: forgotten before net goes
        bool changed = false;

        std::vector<Generated> generate(Context& ctx, std::span<std::vector<std::int32_t> const> prompts,
                                        GenerationConfig const& config) override {
            net.set_training(false);
            return polyalpaca::generate(ctx, net, prompts, config, nullptr);
        }
        BatchLoss loss(Context& ctx, TokenBatch const& batch) override { return net.evaluate(ctx, batch); }
    };

    template <class Model>
    using Slot = std::unique_ptr<Held<Model>>;

    /// f(slot) with the network slot of `method`: "full" or an adapted model's adapter method.
    template <class F>
    auto with_slot(std::string const& method, F&& f) {
        if (method == Full::adapter::method) return f(full_);
        return with_adapted_slot<0>(method, f);
    }
    template <std::size_t I, class F>
    auto with_adapted_slot(std::string const& method, F& f) {
        using Model = std::tuple_element_t<I, std::tuple<Adapted...>>;
        if constexpr (I + 1 == sizeof...(Adapted)) {
            if (method != Model::adapter::method)
                fail("this study engine trains no \"", method, "\" model (", methods_compiled(), ")");
            return f(std::get<I>(adapted_));
        } else {
            if (method == Model::adapter::method) return f(std::get<I>(adapted_));
            return with_adapted_slot<I + 1>(method, f);
        }
    }
    static std::string methods_compiled() {
        std::string out(Full::adapter::method);
        ((out += ", " + std::string(Adapted::adapter::method)), ...);
        return out;
    }
    /// Frees every network but the one in `keep` (nullptr: every one).
    void free_networks(void const* keep = nullptr) {
        current_ = nullptr;
        if (static_cast<void const*>(&full_) != keep) full_.reset();
        std::apply([&](auto&... slots) { ((static_cast<void const*>(&slots) != keep ? slots.reset() : void()), ...); },
                   adapted_);
    }

    /// The method's network holding the base weights and fresh trainable weights (as a new network would), built
    /// when there is none; the other methods' networks are freed first.
    template <class Model>
    Held<Model>& network(Slot<Model>& slot) {
        free_networks(&slot);
        constexpr bool adapted = has_adapter_weights<typename Model::adapter>;
        if (!slot) {
            double const dropout = Model::adapter::has_dropout ? dropout_of(Model::adapter::method) : 0.0;
            slot = std::make_unique<Held<Model>>(*ctx_, NetworkOptions{.seed = options_.seed, .adapter_dropout = dropout});
            restore_base(slot->net);
            if constexpr (adapted && !reads_base_values<typename Model::adapter> &&
                          engine_detail::FrozenStorage<Backend>::exists)
                if (options_.frozen_in_bf16)  // the base is final: an adapter never changes it
                    slot->frozen.emplace(*ctx_, slot->net.parameters(), std::string(Model::embedding_name) + ".weight");
        } else if (slot->changed) {
            if (adapted || base_dir_.empty()) {
                slot->net.reset_trainable(*ctx_, options_.seed);  // frozen weights are untouched by training
            } else {
                restore_base(slot->net);
                slot->net.restart_dropout(options_.seed);
            }
        }
        slot->changed = false;
        return *slot;
    }

    /// Fills the network's base weights: from disk the first time (the config checked, a host copy taken when
    /// the options keep one) and whenever no copy was kept, from the host copy afterwards. Without a base
    /// directory the seed's random weights stay.
    template <class Net>
    void restore_base(Net& net) {
        if (base_dir_.empty()) return;
        if (base_.empty()) {
            auto const warning = io::load_hf_checkpoint(*ctx_, net, base_dir_);
            if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
            ++base_reads_;
            if (options_.keep_base_on_host)
                for (auto const* p : net.parameters().parameters())
                    if (!p->of_adapter()) base_[p->name] = io::download_as_float<Backend>(*ctx_, *p);
            return;
        }
        for (auto* p : net.parameters().parameters()) {
            if (p->of_adapter()) continue;
            auto const it = base_.find(p->name);
            require(it != base_.end(), "the base weights kept in memory lack ", p->name);
            Backend::upload(*ctx_, it->second.data(), p->value, it->second.size());
        }
        net.parameters().initialise_derived(*ctx_);  // DoRA's magnitude follows the base it was drawn from
    }

    template <class Model>
    void load_into(Held<Model>& held, std::filesystem::path const& weights) {
        if (!weights.empty()) {
            if constexpr (has_adapter_weights<typename Model::adapter>) {
                io::load_peft_adapter(*ctx_, held.net, weights);
            } else {
                auto const warning = io::load_hf_checkpoint(*ctx_, held.net, weights);
                if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
            }
        }
        held.changed = !weights.empty();
        current_ = &held;
    }

    template <class Model>
    TrainResult train_net(Held<Model>& held, TrainJob const& job) {
        auto result = fit(held.net, job, /*load_best*/ true);
        if (rank() == 0) {
            if constexpr (has_adapter_weights<typename Model::adapter>)
                io::save_peft_adapter(*ctx_, held.net, job.weights_dir, job.base_model_name,
                                      dropout_of(Model::adapter::method));
            else
                io::save_hf_checkpoint(*ctx_, held.net, job.weights_dir, io::DType::F32);
        }
        distributed::barrier(*world_);
        held.changed = true;
        current_ = &held;
        return result;
    }

    template <class Model>
    TrainResult fit(CausalLm<Model, Backend, float>& net, TrainJob const& job, bool load_best) {
        auto options = job.options;
        options.cost = flop_cost<Model>();
        if (options_.zero1) options.sharding = distributed::OptimizerSharding::Zero1;
        Trainer<Model, Backend, float, distributed::AnyCommunicator<Context>> trainer(*ctx_, net, options, *world_);
        auto const result = trainer.fit(job.mixture, job.examples, job.validation);
        meter_.sample();  // the network's and the optimizer's memory are both still held
        if (load_best) trainer.load_best(result);
        return result;
    }

    /// The GPU this engine runs on: the one NCCL gives this rank, else the options'.
    int device_of_rank() {
        if (world_->device() >= 0) options_.cuda_device = world_->device();
        return options_.cuda_device;
    }

    EngineOptions options_;
    std::unique_ptr<distributed::AnyCommunicator<Context>> world_;  // before the context: NCCL picks the GPU
    typename Backend::MemoryMeter meter_;  // made before the context, so the measure counts what it allocates
    std::unique_ptr<Context> ctx_;
    DeviceDescription device_;
    std::filesystem::path base_dir_;
    std::map<std::string, std::vector<float>> base_;  ///< name -> values, when kept on the host
    double dropout_of(std::string_view method) const {
        auto const it = options_.adapter_dropout.find(std::string(method));
        return it == options_.adapter_dropout.end() ? 0.05 : it->second;
    }

    Slot<Full> full_;
    std::tuple<Slot<Adapted>...> adapted_;
    Current* current_ = nullptr;
    int base_reads_ = 0;
};

}  // namespace polyalpaca::study
