/// @file tests/golden/model_parity.hpp
/// @brief Shared checks of tests/golden/model_*.cpp: a tiny HF checkpoint loaded into CausalLm against what HF
///        transformers and PEFT computed with it (tests/golden/data/models/, written by tools/make_golden.py).
///
/// Relative error of a tensor a against its reference b: max_i |a_i - b_i| / max(max_i |b_i|, 1e-30).
/// Every check prints one line "parity <model> <type> <check> <max relative error>" (docs/parity.md lists them).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <polyalpaca/io/hf_weights.hpp>
#include <polyalpaca/io/peft.hpp>
#include <polyalpaca/io/safetensors.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include "support/fixtures.hpp"

namespace polyalpaca::testing {

/// The largest relative error allowed in fp32 (and in fp64, where the reference itself is fp32).
inline constexpr double parity_tolerance = 1e-4;

inline std::filesystem::path golden_model_dir(std::string const& name) { return golden_dir() / "models" / name; }

/// HF's outputs for one tiny model: models/<name>/reference.safetensors.
class GoldenReference {
public:
    explicit GoldenReference(std::string const& model, std::string const& file = "reference.safetensors")
        : file_(io::SafetensorsFile::open(golden_model_dir(model) / file)) {}

    bool has(std::string const& name) const { return file_.find(name) != nullptr; }
    std::vector<double> values(std::string const& name) const {
        auto const* t = file_.find(name);
        INFO("reference tensor " << name);
        REQUIRE(t != nullptr);
        std::vector<double> out(std::size_t(t->element_count()));
        file_.read(name, std::span<double>(out));
        return out;
    }
    double scalar(std::string const& name) const {
        auto const v = values(name);
        REQUIRE(v.size() == 1);
        return v[0];
    }
    /// An I64 (rows, cols) tensor as int32 (token ids and labels).
    xt::xtensor<std::int32_t, 2> ids(std::string const& name) const {
        auto const* t = file_.find(name);
        INFO("reference tensor " << name);
        REQUIRE(t != nullptr);
        REQUIRE(t->dtype == io::DType::I64);
        REQUIRE(t->shape.size() == 2);
        auto out = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(t->shape[0]), std::size_t(t->shape[1])});
        auto const bytes = file_.raw(*t);
        for (std::size_t i = 0; i < out.size(); ++i) {
            std::int64_t v = 0;
            std::memcpy(&v, bytes.data() + 8 * i, 8);
            out.data()[i] = std::int32_t(v);
        }
        return out;
    }
    /// Names of the reference tensors that start with `prefix`.
    std::vector<std::string> names_with_prefix(std::string const& prefix) const {
        std::vector<std::string> out;
        for (auto const& t : file_.tensors())
            if (t.name.rfind(prefix, 0) == 0) out.push_back(t.name);
        return out;
    }

private:
    io::SafetensorsFile file_;
};

/// max |a - b| / max(max |b|, 1e-30).
template <class T>
double relative_error(T const* actual, std::vector<double> const& expected) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        diff = std::max(diff, std::abs(double(actual[i]) - expected[i]));
        scale = std::max(scale, std::abs(expected[i]));
    }
    return diff / std::max(scale, 1e-30);
}

template <class T>
char const* type_name() {
    return std::is_same_v<T, float> ? "float" : "double";
}

inline void report(std::string const& model, char const* type, std::string const& check, double error) {
    std::printf("parity %-16s %-6s %-28s %.3e\n", model.c_str(), type, check.c_str(), error);
    std::fflush(stdout);
}

/// The batch of the reference: its ids with `labels` ("labels.masked" or "labels.unmasked").
inline TokenBatch golden_batch(GoldenReference const& ref, std::string const& labels) {
    TokenBatch b;
    b.ids = ref.ids("input_ids");
    b.labels = ref.ids(labels);
    return b;
}

template <class T, class Net>
std::vector<Parameter<T>*> trainable_parameters(Net& net) {
    std::vector<Parameter<T>*> out;
    for (auto* p : net.parameters().parameters())
        if (p->trainable()) out.push_back(p);
    return out;
}

/// Logits (batch * seq, vocab) of the net against the reference tensor `name` ((batch, seq, vocab)).
template <class Net, class T>
double logits_error(cpu::Context& ctx, Net& net, TokenBatch const& batch, GoldenReference const& ref,
                    std::string const& name) {
    RowMajorMatrix<T> logits(batch.tokens(), Net::vocab);
    net.logits(ctx, batch, view(logits));
    auto const expected = ref.values(name);
    REQUIRE(expected.size() == std::size_t(logits.size()));
    return relative_error(logits.data(), expected);
}

/// Worst relative error over the gradients of `params` against reference tensors prefix + parameter name, and
/// that the reference lists exactly these parameters.
template <class T>
double gradient_error(std::vector<Parameter<T>*> const& params, GoldenReference const& ref, std::string const& prefix) {
    double worst = 0;
    for (auto* p : params) {
        auto const expected = ref.values(prefix + p->name);
        INFO(p->name);
        REQUIRE(expected.size() == std::size_t(p->size()));
        double const e = relative_error(p->grad, expected);
        CHECK(e <= parity_tolerance);
        worst = std::max(worst, e);
    }
    CHECK(ref.names_with_prefix(prefix).size() == params.size());
    return worst;
}

inline constexpr double adamw_lr = 1e-2;
inline constexpr double adamw_weight_decay = 0.1;

/// Weights after the first AdamW step against torch's. That step moves w to w (1 - lr wd) - lr g / (|g| + eps):
/// by about lr in the direction of -sign(g). Where the reference gradient is within the gradient tolerance of zero
/// (|g| <= 1e-4 max |g| of its tensor, e.g. the key bias, whose true gradient is 0 because softmax ignores a
/// constant added to every score, so g is rounding noise) that sign is not determined by the math; those entries
/// are only checked to have moved by at most lr, unless both gradients are exactly zero. Every other entry counts
/// towards the relative error `worst` (max |a - b| / max |b| over the tensor's determined entries).
struct AdamWAgreement {
    double worst = 0;
    std::int64_t undetermined = 0;
    std::int64_t total = 0;

    template <class T>
    void add(T const* after, T const* grad, T const* before, std::vector<double> const& expected,
             std::vector<double> const& expected_grad) {
        double grad_scale = 0, scale = 0, diff = 0;
        for (double g : expected_grad) grad_scale = std::max(grad_scale, std::abs(g));
        for (double w : expected) scale = std::max(scale, std::abs(w));
        for (std::size_t i = 0; i < expected.size(); ++i) {
            double const a = double(after[i]);
            bool const exact_zero = expected_grad[i] == 0 && grad[i] == T(0);
            if (!exact_zero && std::abs(expected_grad[i]) <= parity_tolerance * grad_scale) {
                ++undetermined;
                double const decayed = double(before[i]) * (1 - adamw_lr * adamw_weight_decay);
                CHECK(std::abs(a - decayed) <= adamw_lr * (1 + 1e-5));
                CHECK(std::abs(expected[i] - decayed) <= adamw_lr * (1 + 1e-5));
                continue;
            }
            diff = std::max(diff, std::abs(a - expected[i]));
        }
        total += std::int64_t(expected.size());
        double const e = diff / std::max(scale, 1e-30);
        CHECK(e <= parity_tolerance);
        worst = std::max(worst, e);
    }
};

/// HF's greedy generations (generate.greedy.<i>, 12 new tokens, no end-of-sequence stop) reproduced by recomputing
/// the whole prefix each step; returns the worst relative error of the step logits against generate.greedy_logits.<i>.
template <class Net, class T>
double greedy_generation_error(cpu::Context& ctx, Net& net, GoldenReference const& ref) {
    double worst = 0;
    for (int prompt = 0; ref.has("generate.prompt." + std::to_string(prompt)); ++prompt) {
        auto const suffix = std::to_string(prompt);
        auto const expected = ref.ids("generate.greedy." + suffix);
        auto const step_logits = ref.values("generate.greedy_logits." + suffix);
        auto const prompt_length = ref.ids("generate.prompt." + suffix).shape()[1];
        std::size_t const total = expected.shape()[1];
        REQUIRE(step_logits.size() == (total - prompt_length) * std::size_t(Net::vocab));
        std::vector<std::int32_t> tokens(expected.data(), expected.data() + prompt_length);
        for (std::size_t step = 0; prompt_length + step < total; ++step) {
            TokenBatch b;
            b.ids = xt::xtensor<std::int32_t, 2>::from_shape({1, tokens.size()});
            std::copy(tokens.begin(), tokens.end(), b.ids.data());
            b.labels = b.ids;
            RowMajorMatrix<T> logits(b.tokens(), Net::vocab);
            net.logits(ctx, b, view(logits));
            auto const last = logits.row(logits.rows() - 1);
            std::vector<double> want(step_logits.begin() + std::ptrdiff_t(step * Net::vocab),
                                     step_logits.begin() + std::ptrdiff_t((step + 1) * Net::vocab));
            worst = std::max(worst, relative_error(last.data(), want));
            Eigen::Index next = 0;
            last.maxCoeff(&next);
            INFO("prompt " << prompt << ", step " << step);
            CHECK(std::int32_t(next) == expected(0, prompt_length + step));
            tokens.push_back(expected(0, prompt_length + step));  // follow HF's path even after a mismatch
        }
    }
    return worst;
}

/// The base model: loads models/<name>, then checks logits, both losses, every gradient, and one AdamW step.
template <class Model, class T>
void check_base_parity(std::string const& name) {
    using Net = CausalLm<Model, CpuEigen, T>;
    char const* type = type_name<T>();
    cpu::Context ctx;
    Net net(ctx, {.seed = 99});
    CHECK(io::load_hf_checkpoint(ctx, net, golden_model_dir(name)) == "");  // config.json checked, every tensor used
    GoldenReference const ref(name);
    auto const masked = golden_batch(ref, "labels.masked");
    auto const unmasked = golden_batch(ref, "labels.unmasked");

    double const logits = logits_error<Net, T>(ctx, net, masked, ref, "logits");
    report(name, type, "logits", logits);
    CHECK(logits <= parity_tolerance);

    for (auto const& [batch, key] : {std::pair{&masked, "loss.masked"}, std::pair{&unmasked, "loss.unmasked"}}) {
        double const want = ref.scalar(key);
        double const e = std::abs(net.evaluate(ctx, *batch).mean() - want) / std::abs(want);
        report(name, type, key, e);
        CHECK(e <= parity_tolerance);
    }

    double const greedy = greedy_generation_error<Net, T>(ctx, net, ref);
    report(name, type, "greedy generation logits", greedy);
    CHECK(greedy <= parity_tolerance);

    auto const params = trainable_parameters<T>(net);
    REQUIRE(params.size() == net.parameters().parameters().size());
    net.set_training(true);
    net.parameters().zero_grads(ctx);
    auto const loss = net.forward_backward(ctx, masked);
    CHECK(std::abs(loss.mean() - ref.scalar("loss.masked")) <= parity_tolerance * ref.scalar("loss.masked"));
    double const grads = gradient_error(params, ref, "grad.");
    report(name, type, "gradients (every weight)", grads);

    AdamW<CpuEigen, T> adamw(net.parameters().trainable_count(), {.lr = adamw_lr, .beta1 = 0.9, .beta2 = 0.999,
                                                                  .eps = 1e-8, .weight_decay = adamw_weight_decay});
    std::vector<std::vector<T>> before, gradients;  // the step recomputes these gradients and consumes them
    for (auto* p : params) {
        before.emplace_back(p->value, p->value + p->size());
        gradients.emplace_back(p->grad, p->grad + p->size());
    }
    train_step(ctx, net, adamw, std::span<TokenBatch const>(&masked, 1), adamw_lr, /*no clipping*/ 0.0, 1);
    AdamWAgreement agreement;
    for (std::size_t i = 0; i < params.size(); ++i) {
        auto* p = params[i];
        INFO(p->name);
        auto const expected = ref.values("adamw." + p->name);
        auto const expected_grad = ref.values("grad." + p->name);
        REQUIRE(expected.size() == std::size_t(p->size()));
        agreement.add(p->value, gradients[i].data(), before[i].data(), expected, expected_grad);
    }
    CHECK(ref.names_with_prefix("adamw.").size() == params.size());
    report(name, type, "weights after one AdamW step", agreement.worst);
    std::printf("parity %-16s %-6s %-28s %lld of %lld\n", name.c_str(), type, "AdamW sign-undetermined",
                static_cast<long long>(agreement.undetermined), static_cast<long long>(agreement.total));
}

/// The LoRA model: base weights from models/<name>, the PEFT adapter from models/<name>-lora; checks logits, the
/// masked loss and the gradient of every lora_A / lora_B (`adapted_per_layer` projections in each layer).
template <class Model, class T>
void check_lora_parity(std::string const& name, int adapted_per_layer) {
    using Net = CausalLm<Model, CpuEigen, T>;
    char const* type = type_name<T>();
    cpu::Context ctx;
    Net net(ctx, {.seed = 99});
    CHECK(io::load_hf_checkpoint(ctx, net, golden_model_dir(name)) == "");
    io::load_peft_adapter(ctx, net, golden_model_dir(name + "-lora"));  // PEFT keys; r and lora_alpha checked
    {  // every adapter weight holds exactly the tensor PEFT saved under "base_model.model.<name>", and nothing is left
        auto const adapter = io::SafetensorsFile::open(golden_model_dir(name + "-lora") / "adapter_model.safetensors");
        std::size_t lora_weights = 0;
        for (auto* p : net.parameters().parameters()) {
            if (p->name.find(".lora_") == std::string::npos) continue;
            ++lora_weights;
            INFO(p->name);
            std::vector<T> saved(std::size_t(p->size()));
            adapter.read("base_model.model." + p->name, std::span<T>(saved));
            CHECK(std::equal(saved.begin(), saved.end(), p->value));
        }
        CHECK(adapter.tensors().size() == lora_weights);
    }
    GoldenReference const ref(name);
    auto const masked = golden_batch(ref, "labels.masked");

    double const logits = logits_error<Net, T>(ctx, net, masked, ref, "lora.logits");
    report(name, type, "LoRA logits", logits);
    CHECK(logits <= parity_tolerance);

    double const want = ref.scalar("lora.loss.masked");
    net.set_training(true);
    net.parameters().zero_grads(ctx);
    double const loss = std::abs(net.forward_backward(ctx, masked).mean() - want) / want;
    report(name, type, "LoRA loss.masked", loss);
    CHECK(loss <= parity_tolerance);

    auto const params = trainable_parameters<T>(net);
    REQUIRE(params.size() == std::size_t(2 * Model::config::layers * adapted_per_layer));
    for (auto* p : params) REQUIRE(p->name.find(".lora_") != std::string::npos);
    double const grads = gradient_error(params, ref, "lora.grad.");
    report(name, type, "LoRA gradients (A and B)", grads);
}

/// An adapter PEFT wrote (models/<name>-<kind>, kind "dora" or "ia3", by tools/make_adapter_golden.py) on the base
/// checkpoint models/<name>: every adapter tensor loaded as saved; logits, the masked loss and every adapter
/// gradient against PEFT's (models/<name>/adapters.safetensors); the merged weights against merge_and_unload's; and
/// what save_peft_adapter writes of it equal to what PEFT wrote (keys, shapes, values, adapter_config.json's fields).
template <class Model, class T>
void check_adapter_parity(std::string const& name, std::string const& kind) {
    using Net = CausalLm<Model, CpuEigen, T>;
    using Adapter = typename Model::adapter;
    char const* type = type_name<T>();
    auto const adapter_dir = golden_model_dir(name + "-" + kind);
    cpu::Context ctx;
    Net net(ctx, {.seed = 99});
    CHECK(io::load_hf_checkpoint(ctx, net, golden_model_dir(name)) == "");
    io::load_peft_adapter(ctx, net, adapter_dir);
    auto const peft_file = io::SafetensorsFile::open(adapter_dir / "adapter_model.safetensors");
    std::size_t adapter_tensors = 0;
    for (auto* p : net.parameters().parameters()) {
        if (!p->of_adapter()) continue;
        ++adapter_tensors;
        INFO(p->name);
        std::vector<T> saved(std::size_t(p->size()));
        peft_file.read("base_model.model." + p->name, std::span<T>(saved));
        CHECK(std::equal(saved.begin(), saved.end(), p->value));
    }
    CHECK(peft_file.tensors().size() == adapter_tensors);

    GoldenReference const ref(name, "adapters.safetensors");
    GoldenReference const base_ref(name);
    auto const masked = golden_batch(base_ref, "labels.masked");
    std::string const label = std::string(Adapter::name);
    double const logits = logits_error<Net, T>(ctx, net, masked, ref, kind + ".logits");
    report(name, type, label + " logits", logits);
    CHECK(logits <= parity_tolerance);

    double const want = ref.scalar(kind + ".loss.masked");
    net.set_training(true);
    net.parameters().zero_grads(ctx);
    double const loss = std::abs(net.forward_backward(ctx, masked).mean() - want) / want;
    report(name, type, label + " loss.masked", loss);
    CHECK(loss <= parity_tolerance);
    auto const params = trainable_parameters<T>(net);
    REQUIRE(params.size() == adapter_tensors);
    for (auto* p : params) REQUIRE(p->of_adapter());
    double const grads = gradient_error(params, ref, kind + ".grad.");
    report(name, type, label + " gradients", grads);

    double merged = 0;
    std::size_t merged_count = 0;
    for (auto const& [p, values] : io::merged_base_weights<Adapter>(ctx, net.parameters())) {
        if (!ref.has(kind + ".merged." + p->name)) continue;
        ++merged_count;
        INFO(p->name);
        double const e = relative_error(values.data(), ref.values(kind + ".merged." + p->name));
        CHECK(e <= parity_tolerance);
        merged = std::max(merged, e);
    }
    CHECK(merged_count == ref.names_with_prefix(kind + ".merged.").size());
    report(name, type, label + " merged weights", merged);

    auto const ours = std::filesystem::temp_directory_path() /
                      ("polyalpaca_golden_" + name + "_" + kind + "_" + type + "_" + std::to_string(::getpid()));
    io::save_peft_adapter(ctx, net, ours);
    auto const our_file = io::SafetensorsFile::open(ours / "adapter_model.safetensors");
    REQUIRE(our_file.tensors().size() == peft_file.tensors().size());
    for (auto const& t : peft_file.tensors()) {
        INFO(t.name);
        auto const* mine = our_file.find(t.name);
        REQUIRE(mine != nullptr);
        CHECK(mine->shape == t.shape);
        std::vector<float> a(std::size_t(t.element_count())), b(a.size());
        peft_file.read(t.name, std::span<float>(a));
        our_file.read(t.name, std::span<float>(b));
        CHECK(a == b);
    }
    auto peft_config = io::read_json_file(adapter_dir / "adapter_config.json");
    auto our_config = io::read_json_file(ours / "adapter_config.json");
    peft_config.erase("peft_version");
    for (auto* config : {&peft_config, &our_config})
        for (char const* list : {"target_modules", "feedforward_modules"})
            if (config->contains(list)) {  // PEFT writes sets in no fixed order, and bloom's "mlp.dense_4h_to_h"
                std::vector<std::string> leaves;
                for (auto const& v : (*config)[list]) {
                    auto const s = v.template get<std::string>();
                    leaves.push_back(s.substr(s.rfind('.') + 1));
                }
                std::sort(leaves.begin(), leaves.end());
                (*config)[list] = leaves;
            }
    CHECK(our_config == peft_config);
    std::filesystem::remove_all(ours);
}

}  // namespace polyalpaca::testing
