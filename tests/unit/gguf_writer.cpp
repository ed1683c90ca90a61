/// @file tests/unit/gguf_writer.cpp
/// @brief GGUF writing (io/gguf_writer.hpp, io/gguf_export.hpp): what the writer puts in a file the reader reads
///        back as written (every metadata type, F32 / F16 / BF16 / Q8_0 tensors), Q8_0 as ggml's reference quantizer
///        encodes, and the golden LLaMA, BLOOM and GPT-NeoX written in each type and loaded again giving the logits
///        of the original, with llama.cpp's names, row orders and hyperparameters.
#include <polyalpaca/io/gguf_export.hpp>
#include <polyalpaca/io/gguf_llama.hpp>
#include <polyalpaca/io/gguf_writer.hpp>
#include <polyalpaca/io/hf_weights.hpp>
#include <polyalpaca/io/safetensors_writer.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

/// Where the files go: POLYALPACA_GGUF_EXPORT_DIR when set (kept there for tools/check_gguf_export.py), else a
/// directory of this process under the temp directory, removed when the process ends.
struct ScratchDir {
    fs::path dir;
    bool keep = false;
    ScratchDir() {
        if (char const* d = std::getenv("POLYALPACA_GGUF_EXPORT_DIR")) dir = d, keep = true;
        else dir = fs::temp_directory_path() / ("polyalpaca_gguf_writer_" + std::to_string(::getpid()));
        fs::create_directories(dir);
    }
    ~ScratchDir() {
        std::error_code ignored;
        if (!keep) fs::remove_all(dir, ignored);
    }
};

fs::path scratch(std::string const& name) {
    static ScratchDir const dir;
    return dir.dir / name;
}

std::vector<float> ramp(std::size_t n, float scale) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * float(i) + 0.1f);
    return v;
}

template <class Net>
std::vector<float> logits_of(pa::cpu::Context& ctx, Net& net) {
    xt::xtensor<std::int32_t, 2> ids = {{5, 17, 3, 88, 42, 0, 61}, {95, 1, 2, 30, 30, 7, 12}};
    auto const batch = pa::make_lm_batch(ids);
    std::vector<float> out(std::size_t(batch.tokens()) * Net::vocab);
    net.logits(ctx, batch, pa::View<float>(out.data(), batch.tokens(), Net::vocab));
    return out;
}

double relative_difference(std::vector<float> const& a, std::vector<float> const& b) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return diff / scale;
}

}  // namespace

TEST_CASE("the GGUF writer's metadata and tensors read back as written", "[io][gguf][writer]") {
    io::GgufWriter w;
    w.set("general.architecture", std::string("llama"));
    w.set("t.u8", io::GgufValue{std::uint8_t(200)});
    w.set("t.i16", io::GgufValue{std::int16_t(-30000)});
    w.set("t.u32", io::GgufValue{std::uint32_t(4000000000u)});
    w.set("t.i64", io::GgufValue{-(std::int64_t(1) << 40)});
    w.set("t.f32", io::GgufValue{0.25f});
    w.set("t.f64", io::GgufValue{-1.5});
    w.set("t.bool", io::GgufValue{true});
    w.set("t.strings", io::GgufValue{io::GgufArray{std::vector<std::string>{"a", "", "ab"}}});
    w.set("t.floats", io::GgufValue{io::GgufArray{std::vector<float>{1.f, -2.f}}});
    w.set("t.bools", io::GgufValue{io::GgufArray{std::vector<bool>{true, false}}});
    auto const values = ramp(64 * 3, 2.0f);
    for (auto type : {io::GgmlType::F32, io::GgmlType::F16, io::GgmlType::BF16, io::GgmlType::Q8_0})
        w.add_tensor("w." + std::string(io::ggml_type_name(type)), {64, 3}, type, [&](std::span<float> out) {
            REQUIRE(out.size() == values.size());
            std::copy(values.begin(), values.end(), out.begin());
        });
    w.add_tensor("v", {5}, io::GgmlType::F32, [](std::span<float> out) { std::fill(out.begin(), out.end(), 7.0f); });
    auto const path = scratch("all.gguf");
    w.write(path);

    io::GgufFile g(path);
    CHECK(g.version() == 3);
    CHECK(g.get_string("general.architecture") == "llama");
    CHECK(g.get<std::uint8_t>("t.u8") == 200);
    CHECK(g.get<std::int16_t>("t.i16") == -30000);
    CHECK(g.get<std::uint32_t>("t.u32") == 4000000000u);
    CHECK(g.get_integer("t.i64") == -(std::int64_t(1) << 40));
    CHECK(g.get<float>("t.f32") == 0.25f);
    CHECK(g.get<double>("t.f64") == -1.5);
    CHECK(g.get_bool("t.bool"));
    CHECK(g.get_array<std::string>("t.strings") == std::vector<std::string>{"a", "", "ab"});
    CHECK(g.get_array<float>("t.floats") == std::vector<float>{1.f, -2.f});
    CHECK(g.get_array<bool>("t.bools") == std::vector<bool>{true, false});
    REQUIRE(g.tensors().size() == 5);
    for (auto const& t : g.tensors()) CHECK(t.file_offset % 32 == 0);

    std::vector<float> back(values.size());
    g.read_tensor("w.F32", std::span<float>(back));
    CHECK(back == values);
    g.read_tensor("w.F16", std::span<float>(back));
    for (std::size_t i = 0; i < values.size(); ++i) CHECK(back[i] == io::half_to_float(io::float_to_half(values[i])));
    g.read_tensor("w.BF16", std::span<float>(back));
    for (std::size_t i = 0; i < values.size(); ++i) CHECK(back[i] == io::bf16_to_float(io::float_to_bf16(values[i])));
    g.read_tensor("w.Q8_0", std::span<float>(back));
    for (std::size_t b = 0; b < values.size(); b += 32) {  // the fp16 scale times roundf(x / scale)
        float amax = 0;
        for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::abs(values[b + j]));
        float const d = amax / 127.0f, stored = io::half_to_float(io::float_to_half(d));
        for (std::size_t j = 0; j < 32; ++j) {
            CHECK(back[b + j] == stored * std::roundf(values[b + j] * (1.0f / d)));
            CHECK(std::abs(back[b + j] - values[b + j]) <= 0.5f * d + 127.0f * std::abs(stored - d));
        }
    }
    CHECK(g.tensor("w.Q8_0").bytes == 6 * 34);
    std::vector<float> v(5);
    g.read_tensor("v", std::span<float>(v));
    CHECK(v == std::vector<float>(5, 7.0f));
}

TEST_CASE("Q8_0 is ggml's reference quantizer, bit for bit", "[io][gguf][writer]") {
    // One block whose largest magnitude is 2.54: d = 0.02, q = roundf(x / d) with halves away from zero.
    std::vector<float> block(32, 0.0f);
    block[0] = 2.54f, block[1] = -2.54f, block[2] = 0.01f, block[3] = -0.01f, block[4] = 1.0f, block[5] = 0.03f;
    std::vector<std::byte> bytes;
    io::encode_ggml(io::GgmlType::Q8_0, block, bytes);
    REQUIRE(bytes.size() == 34);
    std::uint16_t d;
    std::memcpy(&d, bytes.data(), 2);
    float const scale = 2.54f / 127.0f;
    CHECK(d == io::float_to_half(scale));
    auto q = [&](int j) { return std::int8_t(bytes[std::size_t(2 + j)]); };
    float const id = 1.0f / scale;
    CHECK(q(0) == 127);
    CHECK(q(1) == -127);
    CHECK(q(2) == std::int8_t(std::roundf(0.01f * id)));
    CHECK(q(3) == -q(2));
    CHECK(q(4) == std::int8_t(std::roundf(1.0f * id)));
    CHECK(q(5) == std::int8_t(std::roundf(0.03f * id)));
    for (int j = 6; j < 32; ++j) CHECK(q(j) == 0);

    std::vector<std::byte> zeros;  // an all-zero block has scale 0 and codes 0, not NaN
    io::encode_ggml(io::GgmlType::Q8_0, std::vector<float>(32, 0.0f), zeros);
    for (auto b : zeros) CHECK(b == std::byte(0));
    std::vector<std::byte> ignored;
    CHECK_THROWS_WITH(io::encode_ggml(io::GgmlType::Q8_0, std::vector<float>(33, 1.0f), ignored),
                      Contains("33 values do not fill whole blocks"));
    CHECK_THROWS_WITH(io::encode_ggml(io::GgmlType::Q4_K, std::vector<float>(256, 1.0f), ignored),
                      Contains("F32, F16, BF16 and Q8_0 are written"));
    io::GgufWriter w;
    CHECK_THROWS_WITH(w.add_tensor("t", {33, 2}, io::GgmlType::Q8_0, [](std::span<float>) {}),
                      Contains("dimension 0 (33) is not a whole number of Q8_0 blocks"));
}

TEMPLATE_TEST_CASE("a LLaMA written as GGUF loads back with the original's logits", "[io][gguf][writer]",
                   pa::llama::SizeTiny, pa::llama::SizeTinyTied) {
    using Model = pa::Llama<TestType>;
    bool const tied = TestType::tied_head;
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> original(ctx, {.seed = 3});
    CHECK(io::load_hf_checkpoint(ctx, original, pa::testing::golden_dir() / "models" / (tied ? "llama_tied" : "llama"))
              .empty());
    auto const want = logits_of(ctx, original);
    // The worst relative logit difference each type may cause on this random model, whose weights are large
    // (measured: F32 0; F16 1.3e-3; BF16 1.1e-2; Q8_0 4.1e-2).
    for (auto [type, tolerance] : {std::pair{io::GgmlType::F32, 0.0}, std::pair{io::GgmlType::F16, 3e-3},
                                   std::pair{io::GgmlType::BF16, 3e-2}, std::pair{io::GgmlType::Q8_0, 8e-2}}) {
        INFO(io::ggml_type_name(type));
        auto const path = scratch(std::string(tied ? "tied_" : "") + std::string(io::ggml_type_name(type)) + ".gguf");
        io::save_gguf(ctx, original, path, type, "tiny");
        io::GgufFile g(path);
        CHECK(g.get_string("general.architecture") == "llama");
        CHECK(g.get<std::uint32_t>("general.file_type") == io::llama_file_type(type));
        CHECK((g.find_tensor("output.weight") == nullptr) == tied);
        CHECK(g.tensor("output_norm.weight").type == io::GgmlType::F32);  // vectors stay F32
        CHECK(g.tensor("blk.0.attn_q.weight").type == type);
        CHECK(g.tensor("blk.0.attn_q.weight").dims == std::vector<std::int64_t>{32, 32});
        pa::CausalLm<Model, pa::CpuEigen, float> loaded(ctx, {.seed = 9});
        io::load_llama_gguf(ctx, g, loaded);
        double const e = relative_difference(logits_of(ctx, loaded), want);
        std::printf("gguf %-10s %-5s logits relative difference %.3e\n", tied ? "llama_tied" : "llama",
                    std::string(io::ggml_type_name(type)).c_str(), e);
        CHECK(e <= tolerance);
    }
}

TEMPLATE_TEST_CASE("a BLOOM and a GPT-NeoX written as GGUF load back with the original's logits", "[io][gguf][writer]",
                   pa::Bloom<pa::bloom::SizeTiny>, pa::GptNeoX<pa::gpt_neox::SizeTiny>,
                   pa::GptNeoX<pa::gpt_neox::SizeTinySequential>) {
    using Model = TestType;
    using C = typename Model::config;
    auto const spec = pa::spec_of<Model>();
    bool const bloom = spec.family == "bloom";
    std::string const golden = bloom ? "bloom" : spec.parallel_residual ? "gpt_neox" : "gpt_neox_sequential";
    std::string const arch = bloom ? "bloom" : "gptneox";
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> original(ctx, {.seed = 3});
    CHECK(io::load_hf_checkpoint(ctx, original, pa::testing::golden_dir() / "models" / golden).empty());
    auto const want = logits_of(ctx, original);
    // Measured on these random models: F32 0; F16 <= 7.2e-4; BF16 <= 5.5e-3; Q8_0 <= 2.0e-2.
    for (auto [type, tolerance] : {std::pair{io::GgmlType::F32, 0.0}, std::pair{io::GgmlType::F16, 3e-3},
                                   std::pair{io::GgmlType::BF16, 3e-2}, std::pair{io::GgmlType::Q8_0, 8e-2}}) {
        INFO(golden << " as " << io::ggml_type_name(type));
        auto const path = scratch(golden + "_" + std::string(io::ggml_type_name(type)) + ".gguf");
        io::save_gguf(ctx, original, path, type, golden);
        io::GgufFile g(path);
        CHECK(g.get_string("general.architecture") == arch);
        CHECK(g.get_integer(arch + ".embedding_length") == C::hidden);
        CHECK(g.get_integer(arch + ".block_count") == C::layers);
        CHECK(g.get_integer(arch + ".feed_forward_length") == Model::ffn);
        CHECK(g.get_integer(arch + ".attention.head_count") == C::heads);
        CHECK(g.get_number(arch + ".attention.layer_norm_epsilon") == Approx(C::norm_eps));
        if (!bloom) {
            CHECK(g.get_integer("gptneox.rope.dimension_count") ==
                  std::int64_t(spec.rotary_pct * (C::hidden / C::heads)));
            CHECK(std::get<bool>(g.find("gptneox.use_parallel_residual")->data) == spec.parallel_residual);
        }
        CHECK((g.find_tensor("output.weight") == nullptr) == bloom);  // BLOOM's head is tied, as llama.cpp's
        CHECK((g.find_tensor("token_embd_norm.weight") != nullptr) == bloom);
        CHECK(g.tensor("blk.1.attn_qkv.bias").type == io::GgmlType::F32);  // vectors stay F32
        CHECK(g.tensor("blk.1.attn_qkv.weight").type == type);
        CHECK(g.tensor("blk.1.attn_qkv.weight").dims == std::vector<std::int64_t>{C::hidden, 3 * C::hidden});
        if (type == io::GgmlType::F32) {
            // llama.cpp's converter regroups HF's per-head [q, k, v] rows as all q, then all k, then all v.
            auto const* qkv = original.parameters().find("gpt_neox.layers.1.attention.query_key_value.weight");
            if (bloom) qkv = original.parameters().find("transformer.h.1.self_attention.query_key_value.weight");
            REQUIRE(qkv != nullptr);
            auto const hf = io::download<pa::CpuEigen>(ctx, *qkv);
            std::vector<float> stored(hf.size());
            g.read_tensor("blk.1.attn_qkv.weight", std::span<float>(stored));
            int const d = C::hidden / C::heads;
            for (int kind = 0; kind < 3; ++kind)
                for (int h = 0; h < C::heads; ++h)
                    for (int i = 0; i < d; ++i) {
                        auto const gguf_row = std::size_t((kind * C::heads + h) * d + i) * C::hidden;
                        auto const hf_row = std::size_t((h * 3 + kind) * d + i) * C::hidden;
                        REQUIRE(std::equal(stored.begin() + gguf_row, stored.begin() + gguf_row + C::hidden,
                                           hf.begin() + hf_row));
                    }
        }
        pa::CausalLm<Model, pa::CpuEigen, float> loaded(ctx, {.seed = 9});
        io::load_gguf(ctx, g, loaded);
        double const e = relative_difference(logits_of(ctx, loaded), want);
        std::printf("gguf %-19s %-5s logits relative difference %.3e\n", golden.c_str(),
                    std::string(io::ggml_type_name(type)).c_str(), e);
        CHECK(e <= tolerance);
    }
}

struct WiderBloom : pa::bloom::SizeTiny {
    static constexpr int hidden = 64;
};

TEST_CASE("load_gguf refuses a file of another family or size, naming what differs", "[io][gguf][writer]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Bloom<pa::bloom::SizeTiny>, pa::CpuEigen, float> bloom(ctx, {.seed = 1});
    auto const path = scratch("refused_bloom.gguf");
    io::save_gguf(ctx, bloom, path, io::GgmlType::F32);
    io::GgufFile g(path);
    pa::CausalLm<pa::GptNeoX<pa::gpt_neox::SizeTiny>, pa::CpuEigen, float> neox(ctx, {.seed = 1});
    CHECK_THROWS_WITH(io::load_gguf(ctx, g, neox),
                      Contains("general.architecture is 'bloom', the model type is a gptneox"));
    pa::CausalLm<pa::Bloom<WiderBloom>, pa::CpuEigen, float> wider(ctx, {.seed = 1});
    CHECK_THROWS_WITH(io::load_gguf(ctx, g, wider),
                      Contains("bloom.embedding_length: file 32, model 64") && Contains("bloom.feed_forward_length"));
}

namespace {
/// Throws unless two GGUF files hold the same metadata and the same tensors (name, type, dims, values), in any order.
void check_same_gguf(fs::path const& a_path, fs::path const& b_path) {
    io::GgufFile a(a_path), b(b_path);
    REQUIRE(a.metadata().size() == b.metadata().size());
    for (auto const& [key, value] : a.metadata()) {
        INFO(key);
        auto const* other = b.find(key);
        REQUIRE(other != nullptr);
        REQUIRE(other->type() == value.type());
        std::visit(
            [&](auto const& x) {
                using X = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<X, io::GgufArray>)
                    FAIL("check_same_gguf does not compare arrays (a model file without tokenizer has none)");
                else
                    CHECK(std::get<X>(other->data) == x);
            },
            value.data);
    }
    REQUIRE(a.tensors().size() == b.tensors().size());
    for (auto const& t : a.tensors()) {
        INFO(t.name);
        auto const& u = b.tensor(t.name);
        CHECK(u.type == t.type);
        CHECK(u.dims == t.dims);
        std::vector<float> x(std::size_t(t.elements)), y(std::size_t(t.elements));
        a.read_tensor(t.name, std::span<float>(x));
        b.read_tensor(t.name, std::span<float>(y));
        CHECK(x == y);
    }
}

template <class Model>
void check_export_equals_save(std::string const& golden) {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 3});
    auto const dir = pa::testing::golden_dir() / "models" / golden;
    CHECK(io::load_hf_checkpoint(ctx, net, dir).empty());
    for (auto type : {io::GgmlType::F32, io::GgmlType::Q8_0}) {
        INFO(golden << " as " << io::ggml_type_name(type));
        auto const saved = scratch("saved_" + golden + ".gguf"), exported = scratch("exported_" + golden + ".gguf");
        io::save_gguf(ctx, net, saved, type, golden);
        auto const result = io::export_hf_to_gguf(dir, exported, type, golden);
        CHECK(result.tensors == net.parameters().parameters().size());
        check_same_gguf(exported, saved);
    }
}
}  // namespace

TEST_CASE("an HF checkpoint exported to GGUF without building the model equals the model saved",
          "[io][gguf][writer]") {
    check_export_equals_save<pa::Llama<pa::llama::SizeTiny>>("llama");
    check_export_equals_save<pa::Llama<pa::llama::SizeTinyTied>>("llama_tied");
    check_export_equals_save<pa::Bloom<pa::bloom::SizeTiny>>("bloom");
    check_export_equals_save<pa::GptNeoX<pa::gpt_neox::SizeTiny>>("gpt_neox");
}

TEST_CASE("export_hf_to_gguf names the checkpoint and the tensor it cannot place", "[io][gguf][writer]") {
    auto const dir = scratch("odd_checkpoint");
    fs::create_directories(dir);
    fs::copy_file(pa::testing::golden_dir() / "models" / "bloom" / "config.json", dir / "config.json",
                  fs::copy_options::overwrite_existing);
    std::vector<float> const values(4, 1.0f);  // a BLOOM checkpoint with one tensor BLOOM does not have
    io::write_safetensors(dir / "model.safetensors",
                          {{"transformer.h.0.mystery.weight", io::DType::F32, {2, 2}, values}});
    CHECK_THROWS_WITH(io::export_hf_to_gguf(dir, scratch("odd.gguf"), io::GgmlType::F32, "odd"),
                      Contains("odd_checkpoint: tensor 'transformer.h.0.mystery.weight' has no place in a GGUF bloom"));
    CHECK_FALSE(fs::exists(scratch("odd.gguf")));
    // Checked before any work: a fused qkv whose rows are not q, k and v of config.json's heads, and an integer tensor.
    std::vector<float> const rows(90 * 32, 0.5f);
    io::write_safetensors(dir / "model.safetensors",
                          {{"transformer.h.0.self_attention.query_key_value.weight", io::DType::F32, {90, 32}, rows}});
    CHECK_THROWS_WITH(io::export_hf_to_gguf(dir, scratch("odd.gguf"), io::GgmlType::F32, "odd"),
                      Contains("tensor 'transformer.h.0.self_attention.query_key_value.weight' [90, 32]: 90 rows are "
                               "not q, k and v of 4 heads"));
    {  // safetensors' layout by hand: the writer writes float types only
        std::string header = R"({"transformer.ln_f.weight":{"dtype":"I32","shape":[32],"data_offsets":[0,128]}})";
        header.resize((header.size() + 7) / 8 * 8, ' ');
        std::ofstream f(dir / "model.safetensors", std::ios::binary);
        std::uint64_t const length = header.size();
        f.write(reinterpret_cast<char const*>(&length), 8);
        f << header << std::string(128, '\0');
    }
    CHECK_THROWS_WITH(io::export_hf_to_gguf(dir, scratch("odd.gguf"), io::GgmlType::F32, "odd"),
                      Contains("tensor 'transformer.ln_f.weight' is I32, not a float type"));
    CHECK_FALSE(fs::exists(scratch("odd.gguf")));
    auto config = io::read_hf_config(dir);
    config["model_type"] = "gpt2";
    std::ofstream(dir / "config.json") << config.dump();
    CHECK_THROWS_WITH(io::export_hf_to_gguf(dir, scratch("odd.gguf"), io::GgmlType::F32, "odd"), Contains("gpt2"));
}
