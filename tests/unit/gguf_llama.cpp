// LLaMA in GGUF: tensor names map to HF names and back; a GGUF written here from a model the way llama.cpp's
// converter writes one (q/k rows permuted to Meta's layout, dims [in, out]) loads back into both rotary styles;
// mismatched hyperparameters, missing, extra or misshapen tensors are Errors.
#include <polyalpaca/io/gguf_llama.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
using Catch::Contains;

namespace {

struct GqaSize : pa::llama::Defaults {  // HF layout (rotate-half)
    static constexpr int vocab = 50, hidden = 16, layers = 2, heads = 4, kv_heads = 2, ffn = 24;
    static constexpr double norm_eps = 1e-5;
    static constexpr int max_positions = 64;
};
struct GqaMetaSize : GqaSize {
    static constexpr pa::RopeStyle rope_style = pa::RopeStyle::AdjacentPairs;
};
struct GqaTiedSize : GqaSize {
    static constexpr bool tied_head = true;
};
struct LongContext : GqaSize {
    static constexpr int max_positions = 4096;
};
struct ThreeLayers : GqaSize {
    static constexpr int layers = 3;
    static constexpr double rope_base = 500000.0;
};

struct Bytes {
    std::string data;
    template <class V>
    Bytes& put(V v) {
        data.append(reinterpret_cast<char const*>(&v), sizeof(V));
        return *this;
    }
    Bytes& str(std::string const& s) {
        put<std::uint64_t>(s.size());
        data += s;
        return *this;
    }
    Bytes& u32(std::string const& key, std::uint32_t v) {
        return str(key).put(std::uint32_t(io::GgufType::U32)).put(v);
    }
};

struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    io::GgmlType type;
    std::string bytes;
};

/// Edits to the file a test wants: drop or add tensors, change one.
struct Edits {
    std::string architecture = "llama";
    std::function<void(std::vector<Tensor>&)> tensors = [](std::vector<Tensor>&) {};
};

/// What llama.cpp's convert_hf_to_gguf.py writes for a LLaMA: llama.* keys, F32 tensors in ggml dims, q/k permuted
/// from HF's rotate-half rows to Meta's interleaved rows. The embedding is written as F16 (its values must be halves).
template <class Net>
std::string llama_gguf(Net& net, Edits const& edits = {}) {
    using Size = typename Net::Config;
    std::vector<Tensor> tensors;
    for (auto* p : net.parameters().parameters()) {
        auto const name = io::gguf_name_of_hf_llama(p->name);
        REQUIRE(name.has_value());
        std::vector<float> values(p->value, p->value + p->size());
        pa::View<float> const v(values.data(), p->rows, p->cols);
        if (p->name.ends_with("q_proj.weight")) io::permute_hf_to_meta_in_place(v, Size::heads);
        if (p->name.ends_with("k_proj.weight")) io::permute_hf_to_meta_in_place(v, Size::kv_heads);
        Tensor t{*name, {std::uint64_t(p->cols)}, io::GgmlType::F32, {}};
        if (p->rows > 1) t.dims.push_back(std::uint64_t(p->rows));
        if (*name == "token_embd.weight") {
            t.type = io::GgmlType::F16;
            for (float x : values) {
                auto const h = io::float_to_half(x);
                t.bytes.append(reinterpret_cast<char const*>(&h), 2);
            }
        } else {
            t.bytes.assign(reinterpret_cast<char const*>(values.data()), values.size() * 4);
        }
        tensors.push_back(std::move(t));
    }
    edits.tensors(tensors);
    Bytes b;
    b.data = "GGUF";
    b.put<std::uint32_t>(3).put<std::uint64_t>(tensors.size()).put<std::uint64_t>(10);
    b.str("general.architecture").put(std::uint32_t(io::GgufType::String)).str(edits.architecture);
    b.u32("llama.context_length", 128).u32("llama.embedding_length", Size::hidden).u32("llama.block_count", 2);
    b.u32("llama.feed_forward_length", Size::ffn).u32("llama.attention.head_count", Size::heads);
    b.u32("llama.attention.head_count_kv", Size::kv_heads).u32("llama.vocab_size", Size::vocab);
    b.str("llama.attention.layer_norm_rms_epsilon").put(std::uint32_t(io::GgufType::F32)).put(1e-5f);
    b.str("llama.rope.freq_base").put(std::uint32_t(io::GgufType::F32)).put(10000.f);
    std::uint64_t offset = 0;
    for (auto const& t : tensors) {
        b.str(t.name).put<std::uint32_t>(std::uint32_t(t.dims.size()));
        for (auto d : t.dims) b.put(d);
        b.put(std::uint32_t(t.type)).put(offset);
        offset += (t.bytes.size() + 31) / 32 * 32;
    }
    for (auto const& t : tensors) {
        b.data.resize((b.data.size() + 31) / 32 * 32, '\0');
        b.data += t.bytes;
    }
    return b.data;
}

struct TempFile {
    std::filesystem::path path;
    explicit TempFile(std::string const& bytes) {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("gguf_llama_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".gguf");
        std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    }
    ~TempFile() { std::filesystem::remove(path); }
};

template <class Net>
void round_embedding_to_half(Net& net) {
    auto* e = net.parameters().find("model.embed_tokens.weight");
    for (pa::Index i = 0; i < e->size(); ++i) e->value[i] = io::half_to_float(io::float_to_half(e->value[i]));
}

template <class Model>
std::string load_error(std::string const& bytes) {
    TempFile f(bytes);
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    try {
        io::load_llama_gguf(ctx, io::GgufFile(f.path), net);
    } catch (pa::Error const& e) {
        CHECK_THAT(std::string(e.what()), Contains(f.path.filename().string()));
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("GGUF llama tensor names map to HF names and back", "[io][gguf][llama]") {
    std::pair<char const*, char const*> const pairs[] = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"},
        {"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
        {"blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"},
        {"blk.3.attn_k.weight", "model.layers.3.self_attn.k_proj.weight"},
        {"blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"},
        {"blk.31.attn_output.weight", "model.layers.31.self_attn.o_proj.weight"},
        {"blk.1.ffn_norm.weight", "model.layers.1.post_attention_layernorm.weight"},
        {"blk.1.ffn_gate.weight", "model.layers.1.mlp.gate_proj.weight"},
        {"blk.1.ffn_up.weight", "model.layers.1.mlp.up_proj.weight"},
        {"blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"},
    };
    for (auto [gguf, hf] : pairs) {
        CHECK(io::hf_name_of_gguf_llama(gguf) == hf);
        CHECK(io::gguf_name_of_hf_llama(hf) == gguf);
    }
    for (char const* bad : {"blk.x.attn_q.weight", "blk.01.attn_q.weight", "blk.0.attn_qq.weight", "rope_freqs.weight",
                            "blk..attn_q.weight", "blk.0", "token_embd.bias"})
        CHECK_FALSE(io::hf_name_of_gguf_llama(bad).has_value());
    CHECK_FALSE(io::gguf_name_of_hf_llama("model.layers.0.self_attn.q_proj.lora_A.weight").has_value());
}

TEST_CASE("a llama GGUF loads into rotate-half and adjacent-pairs models alike", "[io][gguf][llama]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Llama<GqaSize>, pa::CpuEigen, float> source(ctx, {.seed = 11});
    round_embedding_to_half(source);
    TempFile f(llama_gguf(source));
    io::GgufFile const g(f.path);
    auto const h = io::llama_hyperparameters(g);
    CHECK(h.hidden == 16);
    CHECK(h.kv_heads == 2);
    CHECK(h.rotary_dim == 4);
    CHECK(h.vocab == 50);

    // Rotate-half: the permutation is undone on load, so every weight comes back bit for bit.
    pa::CausalLm<pa::Llama<GqaSize>, pa::CpuEigen, float> hf(ctx, {.seed = 99});
    io::load_llama_gguf(ctx, g, hf);
    for (auto* p : source.parameters().parameters()) {
        auto* q = hf.parameters().find(p->name);
        INFO(p->name);
        CHECK(std::equal(p->value, p->value + p->size(), q->value));
    }

    // Adjacent pairs: q/k stay in Meta's layout, and the logits are the source model's.
    pa::CausalLm<pa::Llama<GqaMetaSize>, pa::CpuEigen, float> meta(ctx, {.seed = 98});
    io::load_llama_gguf(ctx, g, meta);
    CHECK_FALSE(std::equal(source.parameters().find("model.layers.1.self_attn.k_proj.weight")->value,
                           source.parameters().find("model.layers.1.self_attn.k_proj.weight")->value + 32,
                           meta.parameters().find("model.layers.1.self_attn.k_proj.weight")->value));
    xt::xtensor<std::int32_t, 2> ids = {{1, 7, 49, 0, 22, 22, 3, 14, 9, 30, 41, 2}};
    auto const batch = pa::make_lm_batch(ids);
    pa::RowMajorMatrix<float> a(batch.tokens(), GqaSize::vocab), b(batch.tokens(), GqaSize::vocab);
    source.logits(ctx, batch, pa::view(a));
    meta.logits(ctx, batch, pa::view(b));
    float const max_error = (a - b).cwiseAbs().maxCoeff();
    INFO("max |logit difference| " << max_error);
    CHECK(max_error < 1e-5f);
}

TEST_CASE("a llama GGUF that does not fit the model type is refused", "[io][gguf][llama][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Llama<GqaSize>, pa::CpuEigen, float> source(ctx, {.seed = 11});
    auto const file = llama_gguf(source);

    CHECK_THAT(load_error<pa::Llama<ThreeLayers>>(file),
               Contains("does not match the model type") && Contains("layers (llama.block_count): file 2, model 3") &&
                   Contains("rope_base (llama.rope.freq_base): file 10000, model 500000"));
    CHECK_THAT(load_error<pa::Llama<GqaTiedSize>>(file), Contains("untied output.weight"));
    CHECK_THAT(load_error<pa::Llama<GqaSize>>(llama_gguf(source, {.architecture = "gpt2"})),
               Contains("general.architecture is 'gpt2', expected 'llama'"));

    auto drop = [](std::string name) {
        return Edits{.tensors = [name](std::vector<Tensor>& ts) {
            std::erase_if(ts, [&](Tensor const& t) { return t.name == name; });
        }};
    };
    CHECK_THAT(load_error<pa::Llama<GqaSize>>(llama_gguf(source, drop("blk.1.ffn_up.weight"))),
               Contains("1 model weight(s) not found in the file: 'model.layers.1.mlp.up_proj.weight'"));
    Edits extra{.tensors = [](std::vector<Tensor>& ts) {
        ts.push_back({"rope_freqs.weight", {2}, io::GgmlType::F32, std::string(8, '\0')});
    }};
    CHECK_THAT(load_error<pa::Llama<GqaSize>>(llama_gguf(source, extra)),
               Contains("tensor 'rope_freqs.weight'") && Contains("is not a LLaMA weight this loader knows"));
    Edits transposed{.tensors = [](std::vector<Tensor>& ts) {
        for (auto& t : ts)
            if (t.name == "blk.0.ffn_down.weight") std::swap(t.dims[0], t.dims[1]);
    }};
    CHECK_THAT(load_error<pa::Llama<GqaSize>>(llama_gguf(source, transposed)),
               Contains("tensor 'blk.0.ffn_down.weight' has dims [16, 24]") &&
                   Contains("'model.layers.0.mlp.down_proj.weight' of shape (16, 24) needs dims [24, 16]"));
    Edits quantized{.tensors = [](std::vector<Tensor>& ts) {
        for (auto& t : ts)
            if (t.name == "output_norm.weight") t = {t.name, {16}, io::GgmlType::I8, std::string(16, '\0')};
    }};
    CHECK_THAT(load_error<pa::Llama<GqaSize>>(llama_gguf(source, quantized)),
               Contains("tensor 'output_norm.weight' has type I8; only F32, F16, BF16 and Q8_0"));
}

TEST_CASE("check_llama_size accepts the file's own sizes and a shorter context", "[io][gguf][llama]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Llama<GqaSize>, pa::CpuEigen, float> source(ctx);
    TempFile f(llama_gguf(source));
    io::GgufFile const g(f.path);
    CHECK_NOTHROW(io::check_llama_size<GqaSize>(g, io::llama_hyperparameters(g)));
    CHECK_THROWS_WITH(io::check_llama_size<LongContext>(g, io::llama_hyperparameters(g)),
                      Contains("max_positions: model 4096 exceeds the file's llama.context_length 128"));
}
