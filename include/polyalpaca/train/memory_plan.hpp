/// @file train/memory_plan.hpp
/// @brief plan_memory<Model>(device, options): the memory a run would hold on the CPU or on one NVIDIA GPU,
///        predicted before any work by running the real code path on the dry-run backend (backend/sizing.hpp):
///        the network and AdamW are built, two training steps and an evaluation run on a worst-case micro-batch,
///        then KV-cached decoding (prefill, beam reorder, a decoding step at full length) with the training
///        buffers still held. Every byte comes from the allocations the layers, the optimizer and the ops make.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <type_traits>
#include <variant>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/backend/cuda/kernel_choice.hpp"
#include "polyalpaca/backend/sizing.hpp"
#include "polyalpaca/backend/sizing/frozen_bf16.hpp"
#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/distributed/communicator.hpp"
#include "polyalpaca/generate/prefill.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/train/step.hpp"

namespace polyalpaca {

namespace sizing {
/// The dry-run backend under another name, so that ParameterStore's arenas on it are laid out by the primary
/// template (the specialisation below derives from that).
template <class Target>
struct ArenaLayout : Sizing<Target> {};
}  // namespace sizing

/// ParameterStore on the dry-run backend: the same arenas as on any backend, but initialise() draws nothing. There
/// are no values to fill, and drawing 7e9 normal numbers on the host would take far longer than the rest of a plan.
template <class Target, class T>
class ParameterStore<Sizing<Target>, T> : public ParameterStore<sizing::ArenaLayout<Target>, T> {
public:
    template <class... Choices>
    void initialise(typename Sizing<Target>::Context&, std::uint64_t, Choices...) {}
};

/// Where a run would run: the CPU (CpuEigen) with its GEMM math, or one NVIDIA GPU (Cuda) with its attention kernel
/// and GEMM math.
struct Device {
    enum class Kind { Cpu, Cuda };
    Kind kind = Kind::Cpu;
    cuda::AttentionKernel attention = cuda::AttentionKernel::Auto;  ///< Cuda only
    cuda::GemmMath gemm_math = cuda::GemmMath::Bf16;                ///< Cuda only
    cpu::GemmMath cpu_gemm_math = cpu::GemmMath::Fp32;              ///< CpuEigen only

    static Device cpu(cpu::GemmMath math = cpu::GemmMath::Fp32) {
        Device d;
        d.cpu_gemm_math = math;
        return d;
    }
    static Device gpu(cuda::AttentionKernel attention = cuda::AttentionKernel::Auto,
                      cuda::GemmMath math = cuda::GemmMath::Bf16) {
        return {Kind::Cuda, attention, math};
    }
    std::string name() const {
        if (kind == Kind::Cpu) return cpu_gemm_math == cpu::GemmMath::Bf16 ? "cpu (bf16 GEMMs)" : "cpu";
        return std::string("cuda (") + cuda::to_string(gemm_math) + " GEMMs, attention " + cuda::to_string(attention) +
               ")";
    }
};

/// The shapes a run trains and decodes at; nothing here depends on the data.
struct MemoryPlanOptions {
    int micro_batch = 4;            ///< sequences per forward and backward
    int seq = 512;                  ///< tokens per sequence: the longest micro-batch the run makes
    double adapter_dropout = 0.05;  ///< LoRA dropout (its masks are temporaries of the adapter's backward)
    int decode_batch = 8;           ///< prompts decoded together; 0 plans no decoding
    int beams = 4;                  ///< beams per prompt (1: greedy or sampling)
    int prompt_tokens = 256;        ///< tokens of the longest prompt
    int new_tokens = 256;           ///< tokens generated per prompt
    /// Cuda: the frozen weight matrices kept in bf16 only (cuda::FrozenInBf16), as a LoRA network loaded for good
    /// keeps them. Ignored for a model without frozen weights and on the CPU.
    bool frozen_in_bf16 = false;
    /// Data parallel: the plan is of one rank of `ranks`, which holds AdamW's moments of every trainable value
    /// (Replicated: the one-rank plan) or of its ZeRO-1 shard (the largest, rank 0's).
    int ranks = 1;
    distributed::OptimizerSharding sharding = distributed::OptimizerSharding::Replicated;
};

/// Bytes a run holds, by what they are for, and its peaks. The peaks are of the dry run's ledger, allocation by
/// allocation; the parts are what each holds at its largest.
struct MemoryPlan {
    std::string device;                ///< Device::name()
    std::string ranks;                 ///< "" for one rank, else e.g. "rank 0 of 8, ZeRO-1"
    std::string attention;             ///< the attention that runs: "cpu", or on Cuda "flash" or "gemm"
    Index attention_state_cols = 0;    ///< floats attention keeps per (batch, head, query) row for backward
    Index parameters = 0;              ///< every weight
    Index trainable_parameters = 0;    ///< those that train (LoRA: the adapters)
    std::size_t weights = 0;           ///< fp32 values of the weights (all but those kept in bf16 only)
    std::size_t frozen_bf16 = 0;       ///< Cuda: the frozen matrices kept in bf16 only
    std::size_t trainable = 0;         ///< of which trainable
    std::size_t gradients = 0;         ///< the gradient arena (trainable weights only)
    std::size_t optimizer = 0;         ///< AdamW's two moments (under ZeRO-1, of this rank's shard)
    std::size_t bf16_copies = 0;       ///< Cuda, Bf16: the bf16 working copy of every weight a GEMM reads
    std::size_t activations = 0;       ///< what layers keep between forward and backward (activation_bytes_held)
    std::size_t temporaries = 0;       ///< the peak of the temporaries stack (ScratchStack::peak_bytes)
    std::size_t op_scratch = 0;        ///< Cuda: the ops' scratch slots at their largest
    std::size_t workspace = 0;         ///< Cuda: cuBLASLt's workspace
    std::size_t kv_cache = 0;          ///< decoding: keys and values of every slot
    std::size_t decode_logits = 0;     ///< decoding: the logits of one step of every running sequence
    std::size_t training_peak = 0;     ///< the most held at once while building and training
    std::size_t steady_peak = 0;       ///< the most held at once in a later step, once every buffer has grown
    std::size_t decoding_peak = 0;     ///< the most held at once while decoding (training buffers still held)
    std::size_t peak = 0;              ///< the most held at once over the whole run
    sizing::PoolBytes at_peak;         ///< what was held at the peak, by pool

    bool fits(std::size_t available_bytes) const { return peak <= available_bytes; }

    /// One line per part, MiB; the peaks in GiB.
    std::string table() const {
        std::string out = "memory plan on " + device + (ranks.empty() ? "" : ", " + ranks) + ", attention " +
                          attention + " (" + std::to_string(attention_state_cols) + " floats kept per query row)\n";
        auto line = [&](char const* what, std::size_t bytes) {
            char buffer[96];
            std::snprintf(buffer, sizeof buffer, "  %-28s %12.1f MiB\n", what, double(bytes) / double(1 << 20));
            out += buffer;
        };
        auto peak_line = [&](char const* what, std::size_t bytes) {
            char buffer[96];
            std::snprintf(buffer, sizeof buffer, "  %-28s %12.2f GiB\n", what, double(bytes) / double(1 << 30));
            out += buffer;
        };
        out += "  parameters " + std::to_string(parameters) + ", trainable " + std::to_string(trainable_parameters) +
               "\n";
        line("weights (fp32)", weights);
        line("frozen weights (bf16 only)", frozen_bf16);
        line("gradients", gradients);
        line("AdamW moments", optimizer);
        line("bf16 working copies", bf16_copies);
        line("activations kept", activations);
        line("temporaries (stack peak)", temporaries);
        line("op scratch slots", op_scratch);
        line("cuBLASLt workspace", workspace);
        line("KV cache", kv_cache);
        line("decoding logits", decode_logits);
        peak_line("training peak", training_peak);
        peak_line("  from the second step", steady_peak);
        peak_line("decoding peak", decoding_peak);
        peak_line("peak", peak);
        for (std::size_t p = 0; p < sizing::pool_count; ++p) {
            auto const pool = sizing::Pool(p);
            line((std::string("  at peak: ") + sizing::to_string(pool)).c_str(), at_peak[pool]);
        }
        return out;
    }
};

/// The micro-batch a plan trains on: (batch, seq) ids as distinct as the vocabulary allows, every label scored (the
/// most rows the LM head scores, the most distinct ids an embedding backward groups).
inline TokenBatch worst_case_batch(int vocab, int batch, int seq) {
    auto ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    for (std::size_t i = 0; i < ids.size(); ++i) ids.data()[i] = std::int32_t(i % std::size_t(vocab));
    return make_lm_batch(std::move(ids));
}

namespace detail {

/// Rank 0 of `ranks` in a dry run: the communicator train_step sees, whose collectives move nothing, as
/// SingleProcess's. (They allocate nothing on the CPU backend; NCCL's own buffers on a GPU are not counted.)
struct PlannedRank : distributed::SingleProcess {
    int ranks = 1;
    explicit PlannedRank(int r) : ranks(r) {}
    int size() const { return ranks; }
};

/// Decoding as generate() runs it (generate/generate.hpp): a cache slot per beam, the prompts' prefill, every beam
/// copied from its prompt, then the last decoding step, after a reorder that moves every beam, at full length.
template <class Net, class Context>
void plan_decoding(Context& ctx, Net& net, MemoryPlanOptions const& o, MemoryPlan& plan) {
    auto& ledger = ctx.ledger();
    ledger.start_phase();
    int const slots = o.decode_batch * o.beams;
    std::vector<int> const capacities(std::size_t(slots), o.prompt_tokens + o.new_tokens);
    std::size_t const before_cache = ledger.current();
    auto cache = net.make_cache(capacities);
    plan.kv_cache = ledger.current() - before_cache;
    // generate's logits of one forward (HostLogits), grown to the most steps of one call; the prefill in its calls.
    typename Net::BackendType::template Buffer<float> logits;
    auto run = [&](std::span<CacheStep const> steps, std::span<std::int32_t const> ids) {
        std::size_t const n = steps.size() * std::size_t(Net::vocab);
        if (logits.size() < n) logits = typename Net::BackendType::template Buffer<float>(n);
        net.forward_cached(ctx, cache, steps, ids, View<float>(logits.data(), Index(steps.size()), Net::vocab));
    };
    auto reorder_every_beam = [&](bool from_prompt) {  // slot s takes another beam of its prompt
        std::vector<int> src, dst;
        for (int s = 0; s < slots; ++s) {
            int const first = s / o.beams * o.beams;
            src.push_back(from_prompt ? first : first + (s - first + 1) % o.beams);
            dst.push_back(s);
        }
        cache.reorder(ctx, src, dst);
    };
    std::vector<CacheStep> steps;
    std::vector<std::int32_t> ids;
    for (int p = 0; p < o.decode_batch; ++p) {
        steps.push_back({p * o.beams, o.prompt_tokens});
        ids.insert(ids.end(), std::size_t(o.prompt_tokens), std::int32_t(p % Net::vocab));
    }
    for_each_prefill_call(steps, ids, [&](auto call_steps, auto call_ids, std::size_t) { run(call_steps, call_ids); });
    if (o.beams > 1) reorder_every_beam(true);
    if (o.new_tokens >= 2) {  // the last token is chosen from the previous step's logits: new_tokens - 1 steps
        steps.clear();
        ids.clear();
        for (int s = 0; s < slots; ++s) {
            cache.advance(s, o.prompt_tokens + o.new_tokens - 2 - cache.length(s));
            steps.push_back({s, 1});
            ids.push_back(0);
        }
        if (o.beams > 1) reorder_every_beam(false);
        run(steps, ids);
    }
    plan.decode_logits = logits.size() * sizeof(float);
    plan.decoding_peak = ledger.phase_peak();
}

template <class Model, class Target>
MemoryPlan plan_on(Device const& device, MemoryPlanOptions const& o) {
    using Backend = Sizing<Target>;
    using Net = CausalLm<Model, Backend, float>;
    using Config = typename Model::config;
    constexpr int head_dim = Config::hidden / Config::heads;
    typename Backend::Context ctx;
    MemoryPlan plan;
    plan.device = device.name();
    plan.attention = "cpu";
    if constexpr (Target::cuda) {
        cuda::require_flash_compiled(device.attention, head_dim);
        ctx.set_attention_kernel(device.attention);
        ctx.set_gemm_math(device.gemm_math);
        plan.attention = cuda::attention_kernel_that_runs(device.attention, device.gemm_math, head_dim);
    } else {
        ctx.set_gemm_math(device.cpu_gemm_math);
    }
    plan.attention_state_cols =
        attention_state_cols(ctx, AttentionShape{o.micro_batch, o.seq, Config::heads, Config::heads, head_dim});
    auto& ledger = ctx.ledger();

    auto net = std::make_unique<Net>(ctx, NetworkOptions{.seed = 0, .adapter_dropout = o.adapter_dropout});
    auto& store = net->parameters();
    plan.parameters = store.total_count();
    plan.trainable_parameters = store.trainable_count();
    using Frozen = std::conditional_t<Target::cuda, sizing::FrozenInBf16<Target>, std::monostate>;
    std::optional<Frozen> frozen;  // after the net: it goes first, as the engine's does
    std::size_t moved = 0;
    if constexpr (Target::cuda) {
        // Not under an adapter that reads its base's fp32 values (DoRA), which the engine keeps in fp32 too.
        if (o.frozen_in_bf16 && !reads_base_values<typename Model::adapter> && store.frozen_count() > 0) {
            frozen.emplace(ctx, store, std::string(Model::embedding_name) + ".weight");
            moved = frozen->values();
            plan.frozen_bf16 = frozen->bytes();
        }
    }
    plan.weights = (std::size_t(store.total_count()) - moved) * sizeof(float);
    plan.trainable = std::size_t(store.trainable_count()) * sizeof(float);
    plan.gradients = plan.trainable;
    store.allocate_gradients();  // as the first step would
    PlannedRank rank{o.ranks};
    bool const zero1 = o.sharding == distributed::OptimizerSharding::Zero1;
    if (o.ranks > 1) plan.ranks = "rank 0 of " + std::to_string(o.ranks) + (zero1 ? ", ZeRO-1" : ", replicated");
    Index const moments_of =
        zero1 ? distributed::shard_of(store.trainable_count(), o.ranks, 0).count : store.trainable_count();
    std::size_t const before_optimizer = ledger.current();
    AdamW<Backend, float> optimizer(moments_of);
    plan.optimizer = ledger.current() - before_optimizer;

    // The first step grows every buffer (and the temporaries stack block by block, so it holds more than its
    // peak in use until its blocks merge), an evaluation runs between steps as a trainer's does, and the second
    // step runs as every later one.
    auto const batch = worst_case_batch(Config::vocab, o.micro_batch, o.seq);
    std::span<TokenBatch const> const micro(&batch, 1);
    std::size_t const buffers_before_steps = ledger.held()[sizing::Pool::Buffers];  // arenas and moments
    train_step(ctx, *net, optimizer, micro, 1e-4, 1.0, 1, rank, o.sharding);
    (void)net->evaluate(ctx, batch);
    ledger.start_phase();
    train_step(ctx, *net, optimizer, micro, 1e-4, 1.0, 2, rank, o.sharding);
    plan.steady_peak = ledger.phase_peak();
    plan.training_peak = ledger.peak();
    plan.activations = ledger.held()[sizing::Pool::Buffers] - buffers_before_steps;  // the ActivationBuffers
    plan.temporaries = ctx.temporaries.peak_bytes();

    if (o.decode_batch > 0) plan_decoding(ctx, *net, o, plan);
    plan.op_scratch = ctx.scratch_bytes();
    plan.bf16_copies = ctx.bf16_copy_bytes();
    plan.workspace = ctx.workspace_bytes();
    plan.peak = ledger.peak();
    plan.at_peak = ledger.at_peak();
    return plan;
}

}  // namespace detail

/// The memory a run of Model (a family type: Bloom<...>, GptNeoX<...>, Llama<...>) would hold on `device`, from a
/// dry run of the real code path. Throws, as the run would, on shapes the model refuses (a sequence or a decoding
/// slot longer than its positions).
template <class Model>
MemoryPlan plan_memory(Device const& device, MemoryPlanOptions const& options = {}) {
    require(options.micro_batch >= 1 && options.seq >= 1, "plan_memory: micro-batch (", options.micro_batch,
            ") and sequence length (", options.seq, ") must be positive");
    require(options.decode_batch >= 0, "plan_memory: decode_batch must not be negative, got ", options.decode_batch);
    require(options.ranks >= 1, "plan_memory: ranks must be at least 1, got ", options.ranks);
    require(options.decode_batch == 0 || (options.beams >= 1 && options.prompt_tokens >= 1 && options.new_tokens >= 1),
            "plan_memory: decoding needs at least one beam, one prompt token and one new token; got ", options.beams,
            ", ", options.prompt_tokens, ", ", options.new_tokens);
    if (device.kind == Device::Kind::Cpu) return detail::plan_on<Model, sizing::CpuEigenTarget>(device, options);
    return detail::plan_on<Model, sizing::CudaTarget>(device, options);
}

}  // namespace polyalpaca
