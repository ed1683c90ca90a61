// llama2.c checkpoints written here in the layouts of karpathy/llama2.c export.py (legacy version 0, version 1 fp32,
// version 2 Q8_0): they load by HF name into adjacent-pairs and rotate-half models; wrong sizes, headers and model
// types are Errors naming the file and the reason.
#include <polyalpaca/io/llama2c.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
using Catch::Contains;

namespace {

struct MetaSize : pa::llama::Defaults {  // llama2.c conventions: adjacent pairs, eps 1e-5
    static constexpr int vocab = 40, hidden = 16, layers = 2, heads = 4, kv_heads = 2, ffn = 24;
    static constexpr double norm_eps = 1e-5;
    static constexpr int max_positions = 32;
    static constexpr pa::RopeStyle rope_style = pa::RopeStyle::AdjacentPairs;
};
struct MetaTiedSize : MetaSize {
    static constexpr bool tied_head = true;
};
struct HfSize : MetaSize {
    static constexpr pa::RopeStyle rope_style = pa::RopeStyle::RotateHalf;
};
struct ThreeLayers : MetaSize {
    static constexpr int layers = 3;
};
struct HfEps : MetaSize {
    static constexpr double norm_eps = 1e-6;
};
struct OtherBase : MetaSize {
    static constexpr double rope_base = 500000.0;
};
using Meta = pa::Llama<MetaSize>;

struct Bytes {
    std::string data;
    template <class V>
    Bytes& put(V v) {
        data.append(reinterpret_cast<char const*>(&v), sizeof(V));
        return *this;
    }
    Bytes& floats(pa::Parameter<float> const& p) {
        data.append(reinterpret_cast<char const*>(p.value), std::size_t(p.size()) * 4);
        return *this;
    }
};

struct Checkpoint {
    int version = 0;
    bool shared = true;          // write no classifier; otherwise lm_head (or the embedding again, for a tied model)
    int group_size = 8;          // version 2
    double rope_base = 10000.0;  // version 0 freq_cis tables
    int seq_len = 32;
};

/// The bytes export.py writes for `net` (whose q/k rows are already in Meta's layout).
template <class Net>
std::string llama2c_file(Net& net, Checkpoint const& c) {
    using Size = typename Net::Config;
    auto& params = net.parameters();
    auto p = [&](std::string const& name) -> pa::Parameter<float>& { return *params.find(name); };
    auto layer = [&](int l, char const* part) -> pa::Parameter<float>& {
        return p("model.layers." + std::to_string(l) + "." + part);
    };
    auto& head = p(Net::tied_head ? "model.embed_tokens.weight" : "lm_head.weight");
    Bytes b;
    int const ints[] = {Size::hidden, Size::ffn, Size::layers, Size::heads, Size::kv_heads, Size::vocab, c.seq_len};
    if (c.version > 0) b.put<std::uint32_t>(0x616b3432).put<std::int32_t>(c.version);
    for (int i = 0; i < 7; ++i) b.put<std::int32_t>(i == 5 && c.version == 0 && !c.shared ? -ints[i] : ints[i]);
    if (c.version > 0) {
        b.put<std::uint8_t>(c.shared ? 1 : 0);
        if (c.version == 2) b.put<std::int32_t>(c.group_size);
        b.data.resize(256, '\0');
    }
    std::vector<pa::Parameter<float>*> big;  // the matrices, in file order
    auto add = [&](char const* part) {
        for (int l = 0; l < Size::layers; ++l) big.push_back(&layer(l, part));
    };
    for (char const* part :
         {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight"})
        add(part);
    std::vector<pa::Parameter<float>*> mlp;
    for (char const* part : {"mlp.gate_proj.weight", "mlp.down_proj.weight", "mlp.up_proj.weight"})
        for (int l = 0; l < Size::layers; ++l) mlp.push_back(&layer(l, part));
    if (c.version == 0) {
        b.floats(p("model.embed_tokens.weight"));
        for (int l = 0; l < Size::layers; ++l) b.floats(layer(l, "input_layernorm.weight"));
        for (auto* w : big) b.floats(*w);
        for (int l = 0; l < Size::layers; ++l) b.floats(layer(l, "post_attention_layernorm.weight"));
        for (auto* w : mlp) b.floats(*w);
        b.floats(p("model.norm.weight"));
        int const half = Size::hidden / Size::heads / 2;
        for (auto f : {+[](double a) { return std::cos(a); }, +[](double a) { return std::sin(a); }})
            for (int t = 0; t < c.seq_len; ++t)
                for (int i = 0; i < half; ++i) b.put(float(f(t * std::pow(c.rope_base, -2.0 * i / (2 * half)))));
        if (!c.shared) b.floats(head);
        return b.data;
    }
    for (int l = 0; l < Size::layers; ++l) b.floats(layer(l, "input_layernorm.weight"));
    for (int l = 0; l < Size::layers; ++l) b.floats(layer(l, "post_attention_layernorm.weight"));
    b.floats(p("model.norm.weight"));
    big.insert(big.begin(), &p("model.embed_tokens.weight"));
    big.insert(big.end(), mlp.begin(), mlp.end());
    if (!c.shared) big.push_back(&head);
    if (c.version == 1) {
        for (auto* w : big) b.floats(*w);
        return b.data;
    }
    Bytes scales;  // export.py quantize_q80: per group, scale = max|w| / 127, q = round(w / scale)
    for (auto* w : big) {
        for (pa::Index g = 0; g < w->size(); g += c.group_size) {
            float wmax = 0;
            for (int i = 0; i < c.group_size; ++i) wmax = std::max(wmax, std::abs(w->value[g + i]));
            float const scale = wmax / 127.0f;
            for (int i = 0; i < c.group_size; ++i) b.put(std::int8_t(std::lround(w->value[g + i] / scale)));
            scales.put(scale);
        }
    }
    return b.data + scales.data;
}

struct TempFile {
    std::filesystem::path path;
    explicit TempFile(std::string const& bytes) {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("llama2c_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".bin");
        std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    }
    ~TempFile() { std::filesystem::remove(path); }
};

template <class Model>
std::string load_error(std::string const& bytes) {
    TempFile f(bytes);
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    try {
        io::load_llama2c(ctx, f.path, net);
    } catch (pa::Error const& e) {
        CHECK_THAT(std::string(e.what()), Contains(f.path.filename().string()));
        return e.what();
    }
    return "(no error)";
}

template <class A, class B>
bool same_values(A& a, B& b, std::string const& name) {
    auto const* p = a.parameters().find(name);
    auto const* q = b.parameters().find(name);
    return p && q && p->size() == q->size() && std::equal(p->value, p->value + p->size(), q->value);
}

}  // namespace

TEST_CASE("llama2.c versions 0 and 1 load every weight by its HF name", "[io][llama2c]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Meta, pa::CpuEigen, float> source(ctx, {.seed = 21});
    for (int version : {0, 1}) {
        for (bool shared : {false, true}) {
            INFO("version " << version << (shared ? ", shared classifier" : ", own classifier"));
            TempFile f(llama2c_file(source, {.version = version, .shared = shared}));
            pa::CausalLm<Meta, pa::CpuEigen, float> loaded(ctx, {.seed = 1});
            auto const h = io::load_llama2c(ctx, f.path, loaded);
            CHECK(h.version == version);
            CHECK(h.shared_classifier == shared);
            CHECK(h.kv_heads == 2);
            for (auto* p : source.parameters().parameters()) {
                INFO(p->name);
                if (!shared || p->name != "lm_head.weight") CHECK(same_values(source, loaded, p->name));
            }
            if (shared) {  // an untied model gets the embedding as its head
                auto const* e = loaded.parameters().find("model.embed_tokens.weight");
                auto const* w = loaded.parameters().find("lm_head.weight");
                CHECK(std::equal(e->value, e->value + e->size(), w->value));
            }
        }
    }
    pa::CausalLm<pa::Llama<MetaTiedSize>, pa::CpuEigen, float> tied_source(ctx, {.seed = 4});
    TempFile f(llama2c_file(tied_source, {.version = 0}));
    pa::CausalLm<pa::Llama<MetaTiedSize>, pa::CpuEigen, float> tied(ctx);
    io::load_llama2c(ctx, f.path, tied);
    for (auto* p : tied_source.parameters().parameters()) CHECK(same_values(tied_source, tied, p->name));
}

TEST_CASE("llama2.c version 2 dequantizes int8 groups with their scales", "[io][llama2c]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Meta, pa::CpuEigen, float> source(ctx, {.seed = 8});
    TempFile f(llama2c_file(source, {.version = 2, .shared = false, .group_size = 8}));
    pa::CausalLm<Meta, pa::CpuEigen, float> loaded(ctx, {.seed = 1});
    auto const h = io::load_llama2c(ctx, f.path, loaded);
    CHECK(h.group_size == 8);
    CHECK(same_values(source, loaded, "model.layers.1.input_layernorm.weight"));  // norms stay fp32
    for (auto* p : source.parameters().parameters()) {
        if (p->rows == 1) continue;
        auto const* q = loaded.parameters().find(p->name);
        double worst = 0, worst_allowed = 0;
        for (pa::Index g = 0; g < p->size(); g += 8) {
            float wmax = 0;
            for (int i = 0; i < 8; ++i) wmax = std::max(wmax, std::abs(p->value[g + i]));
            float const scale = wmax / 127.0f;
            for (int i = 0; i < 8; ++i) {
                CHECK(q->value[g + i] == float(std::lround(p->value[g + i] / scale)) * scale);
                worst = std::max(worst, double(std::abs(q->value[g + i] - p->value[g + i])));
                worst_allowed = std::max(worst_allowed, 0.5 * scale * (1 + 1e-5));
            }
        }
        INFO(p->name);
        CHECK(worst <= worst_allowed);
    }
}

TEST_CASE("a llama2.c checkpoint gives the same logits in a rotate-half model", "[io][llama2c]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Meta, pa::CpuEigen, float> source(ctx, {.seed = 30});
    TempFile f(llama2c_file(source, {.version = 0, .shared = false}));
    pa::CausalLm<pa::Llama<HfSize>, pa::CpuEigen, float> hf(ctx);
    io::load_llama2c(ctx, f.path, hf);
    CHECK_FALSE(same_values(source, hf, "model.layers.0.self_attn.q_proj.weight"));  // permuted on load
    CHECK(same_values(source, hf, "model.layers.0.self_attn.v_proj.weight"));
    xt::xtensor<std::int32_t, 2> ids = {{1, 9, 39, 4, 4, 17, 0, 25, 11, 3}, {2, 2, 2, 2, 2, 2, 2, 2, 2, 2}};
    auto const batch = pa::make_lm_batch(ids);
    pa::RowMajorMatrix<float> a(batch.tokens(), MetaSize::vocab), b(batch.tokens(), MetaSize::vocab);
    source.logits(ctx, batch, pa::view(a));
    hf.logits(ctx, batch, pa::view(b));
    float const max_error = (a - b).cwiseAbs().maxCoeff();
    INFO("max |logit difference| " << max_error);
    CHECK(max_error < 1e-5f);
}

TEST_CASE("llama2.c: wrong sizes and headers are refused", "[io][llama2c][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Meta, pa::CpuEigen, float> source(ctx);
    auto const v0 = llama2c_file(source, {.version = 0, .shared = false});
    CHECK_THAT(load_error<Meta>(v0 + "x"), Contains("the file has " + std::to_string(v0.size() + 1) +
                                                    " bytes but a "
                                                    "version-0 checkpoint with this header") &&
                                               Contains("has exactly " + std::to_string(v0.size())));
    CHECK_THAT(load_error<Meta>(v0.substr(0, v0.size() - 4)), Contains("has exactly " + std::to_string(v0.size())));
    CHECK_THAT(load_error<Meta>(v0.substr(0, 20)), Contains("truncated: 20 bytes cannot hold a llama2.c header"));
    auto const v1 = llama2c_file(source, {.version = 1});
    CHECK_THAT(load_error<Meta>(v1.substr(0, 100)), Contains("cannot hold the 256-byte header"));

    auto with_int = [](std::string bytes, std::size_t offset, std::int32_t value) {
        std::memcpy(bytes.data() + offset, &value, 4);
        return bytes;
    };
    CHECK_THAT(load_error<Meta>(with_int(v0, 12, 0)), Contains("at offset 12: header field n_heads is 0"));
    CHECK_THAT(load_error<Meta>(with_int(v0, 0, -16)), Contains("at offset 0: header field dim is -16"));
    CHECK_THAT(load_error<Meta>(with_int(v0, 12, 3)), Contains("n_heads 3 does not divide dim 16"));
    CHECK_THAT(load_error<Meta>(with_int(v0, 20, 0)), Contains("header field vocab_size is 0"));
    CHECK_THAT(load_error<Meta>(with_int(v1, 4, 3)), Contains("at offset 4: unsupported llama2.c version 3"));
    auto bad_flag = v1;
    bad_flag[36] = 2;
    CHECK_THAT(load_error<Meta>(bad_flag), Contains("at offset 36: the shared-classifier flag is 2"));
    auto const v2 = llama2c_file(source, {.version = 2, .group_size = 8});
    CHECK_THAT(load_error<Meta>(with_int(v2, 37, 0)), Contains("at offset 37: group size 0"));
    CHECK_THAT(load_error<Meta>(with_int(v2, 37, 7)), Contains("not a multiple of the group size 7"));
    // Sizes whose products overflow 64 bits.
    auto huge = v0;
    for (auto [offset, value] : {std::pair{0, 1 << 30}, {4, 1 << 30}, {8, 1 << 30}, {12, 1 << 29}, {16, 1 << 29}})
        huge = with_int(huge, std::size_t(offset), value);
    CHECK_THAT(load_error<Meta>(huge), Contains("the header's sizes overflow"));
}

TEST_CASE("llama2.c: a checkpoint that does not fit the model type is refused", "[io][llama2c][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Meta, pa::CpuEigen, float> source(ctx);
    auto const own = llama2c_file(source, {.version = 0, .shared = false});
    CHECK_THAT(load_error<pa::Llama<ThreeLayers>>(own),
               Contains("does not match the model type") && Contains("n_layers: file 2, model 3"));
    CHECK_THAT(load_error<pa::Llama<HfEps>>(own), Contains("norm_eps: llama2.c uses 1e-05, model 1e-06"));
    CHECK_THAT(load_error<pa::Llama<MetaTiedSize>>(own),
               Contains("the file has its own classifier but the model type ties"));
    CHECK_THAT(load_error<pa::Llama<OtherBase>>(own), Contains("the rotary tables (freq_cis at position 1, pair 1) do "
                                                               "not match the model's rope_base 500000"));
    CHECK_THAT(load_error<pa::Llama<OtherBase>>(llama2c_file(source, {.version = 1})),
               Contains("llama2.c uses rotary base 10000 but the model type has 500000"));
    CHECK_THAT(load_error<Meta>(llama2c_file(source, {.version = 0, .rope_base = 500000.0})),
               Contains("do not match the model's rope_base 10000"));
    CHECK_THAT(load_error<Meta>(llama2c_file(source, {.version = 1, .seq_len = 16})),
               Contains("max_positions: model 32 exceeds the file's seq_len 16"));
}
