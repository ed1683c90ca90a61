/// @file io/gguf_export.hpp
/// @brief A model of any family, or an HF checkpoint of one, to a llama.cpp GGUF file, and a file back into a model,
///        by the family's GGUF side (`<family>::Gguf`, models/gguf_layout.hpp): llama.cpp's tensor names, row orders
///        and hyperparameters, each matrix as F32, F16, BF16 or Q8_0, streamed one tensor at a time, written
///        atomically.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/gguf.hpp"
#include "polyalpaca/io/gguf_hf_vocabulary.hpp"
#include "polyalpaca/io/gguf_vocabulary.hpp"
#include "polyalpaca/io/gguf_writer.hpp"
#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/parameter_io.hpp"
#include "polyalpaca/io/peft_merge.hpp"
#include "polyalpaca/io/rope_permutation.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/families.hpp"
#include "polyalpaca/models/model_spec.hpp"

namespace polyalpaca::io {

/// HF's fused query_key_value rows ([heads][q, k, v][head_dim]) regrouped as llama.cpp stores them ([q, k, v][heads]
/// [head_dim]), or back (`to_gguf` false). `rows` is (3 * heads * head_dim, cols): a weight, or a bias as one column.
template <class T>
void regroup_fused_qkv(View<T> rows, int heads, bool to_gguf) {
    require(heads > 0 && rows.rows % (3 * heads) == 0, "regroup_fused_qkv: ", rows.rows, " rows are not 3 x ", heads,
            " heads");
    Index const head_dim = rows.rows / (3 * heads);
    std::vector<T> copy(rows.data, rows.data + rows.size());
    for (Index h = 0; h < heads; ++h)
        for (Index kind = 0; kind < 3; ++kind)
            for (Index i = 0; i < head_dim; ++i) {
                Index const hf_row = (h * 3 + kind) * head_dim + i;
                Index const gguf_row = (kind * heads + h) * head_dim + i;
                Index const from = to_gguf ? hf_row : gguf_row, to = to_gguf ? gguf_row : hf_row;
                std::copy_n(copy.data() + from * rows.cols, rows.cols, rows.data + to * rows.cols);
            }
}

/// What the GGUF row orders need to know of a model: its heads and whether it rotates halves (HF's RoPE layout).
struct GgufHeads {
    int heads = 0;
    int kv_heads = 0;
    bool rotate_half = true;
};

inline GgufHeads gguf_heads(ModelSpec const& s) { return {int(s.heads), int(s.kv_heads), s.rope_rotate_half}; }

/// Reorders `rows` (a matrix, or a vector as one column) between HF's and GGUF's row order.
template <class T>
void reorder_for_gguf(GgufRows order, View<T> rows, GgufHeads const& h, bool to_gguf) {
    switch (order) {
        case GgufRows::Same: return;
        case GgufRows::FusedQkvByKind: regroup_fused_qkv(rows, h.heads, to_gguf); return;
        case GgufRows::RopeQuery:
        case GgufRows::RopeKey: {
            if (!h.rotate_half) return;  // already Meta's pairs
            int const heads = order == GgufRows::RopeQuery ? h.heads : h.kv_heads;
            if (to_gguf)
                permute_hf_to_meta_in_place(rows, heads);
            else
                permute_meta_to_hf_in_place(rows, heads);
            return;
        }
    }
}

/// Why `rows` rows cannot take `order` for heads `h` ("" when they can): the check an export makes before any work.
inline std::string gguf_rows_problem(GgufRows order, std::int64_t rows, GgufHeads const& h) {
    auto const concat = [](auto const&... parts) { return polyalpaca::detail::concat(parts...); };
    if (order == GgufRows::FusedQkvByKind && (h.heads <= 0 || rows % (3 * h.heads) != 0))
        return concat(rows, " rows are not q, k and v of ", h.heads, " heads");
    if ((order == GgufRows::RopeQuery || order == GgufRows::RopeKey) && h.rotate_half) {
        int const heads = order == GgufRows::RopeQuery ? h.heads : h.kv_heads;
        if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
            return concat(rows, " rows are not ", heads, " heads of rotary pairs");
    }
    return {};
}

/// llama.cpp's general.file_type of a model whose matrices are stored as `type` (LLAMA_FTYPE_ALL_F32,
/// MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16).
inline std::uint32_t llama_file_type(GgmlType type) {
    switch (type) {
        case GgmlType::F32: return 0;
        case GgmlType::F16: return 1;
        case GgmlType::Q8_0: return 7;
        case GgmlType::BF16: return 32;
        default: fail("a GGUF model is written as F32, F16, BF16 or Q8_0, not ", ggml_type_name(type));
    }
}

namespace detail {

/// A (rows, cols) tensor's values as the rows reorder_for_gguf takes (a vector's elements are its rows).
template <class V>
View<V> gguf_rows(V* values, std::int64_t rows, std::int64_t cols) {
    return rows == 1 ? View<V>(values, cols, 1) : View<V>(values, rows, cols);
}

/// The GGUF dims of a parameter: [cols, rows] for a matrix, [n] for a vector.
template <class T>
std::vector<std::int64_t> gguf_dims(Parameter<T> const& p) {
    return p.rows > 1 ? std::vector<std::int64_t>{p.cols, p.rows} : std::vector<std::int64_t>{p.cols};
}

inline GgufValue gguf_value(std::variant<std::uint32_t, float, bool> const& v) {
    return std::visit([](auto x) { return GgufValue{x}; }, v);
}


/// general.* and the architecture's hyperparameters of a model file.
template <class Gguf>
void set_model_metadata(GgufWriter& w, ModelSpec const& spec, std::int64_t context_length, GgmlType type,
                        std::string name) {
    std::string const arch = Gguf::architecture;
    w.set("general.architecture", arch);
    w.set("general.type", std::string("model"));
    w.set("general.name", std::move(name));
    w.set("general.file_type", GgufValue{llama_file_type(type)});
    for (auto const& h : Gguf::hyperparameters(spec, context_length)) w.set(arch + "." + h.key, gguf_value(h.value));
}

/// The type a (rows, cols) tensor is stored as when the file is `type`: vectors F32, a matrix whose rows are no whole
/// number of Q8_0 blocks F16 (as llama.cpp's converter does).
inline GgmlType stored_type(GgmlType type, std::int64_t rows, std::int64_t cols) {
    return rows == 1 ? GgmlType::F32 : ggml_type_fits(type, cols) ? type : GgmlType::F16;
}

}  // namespace detail

/// Writes `net` (without adapter: merge one first, io::merge_adapter, or write the adapter apart,
/// io/gguf_adapter.hpp) as a GGUF file the way llama.cpp's converter lays its family out (`<family>::Gguf`): the
/// architecture's hyperparameters, GGUF tensor names and row orders, vectors (norms, biases) in F32 and every matrix
/// as `type` (F32, F16, BF16 or Q8_0; a matrix whose rows are no whole number of Q8_0 blocks is F16, as the
/// converter does). A tied head is not written (llama.cpp ties it too). One tensor at a time is on the host; the
/// file appears atomically. load_gguf reads it back. With a `vocabulary` (io/gguf_vocabulary.hpp) the file carries
/// the tokenizer too, as llama.cpp needs to load it.
template <class Model, class Backend, class T>
void save_gguf(typename Backend::Context& ctx, CausalLm<Model, Backend, T>& net, std::filesystem::path const& path,
               GgmlType type, std::string name = "polyalpaca",
               tokenizer::LlamaCppVocabulary const* vocabulary = nullptr) {
    static_assert(!has_adapter_weights<typename Model::adapter>,
                  "save_gguf writes a model without adapter: merge it first (io::merge_adapter)");
    using Gguf = gguf_family_of<Model>;
    ModelSpec const spec = spec_of<Model>();
    GgufHeads const heads = gguf_heads(spec);
    GgufWriter w;
    detail::set_model_metadata<Gguf>(w, spec, Model::config::max_positions, type, std::move(name));
    if (vocabulary != nullptr) set_tokenizer_metadata(w, *vocabulary, Model::config::vocab, path.string());
    for (auto const* p : net.parameters().parameters()) {
        auto const place = Gguf::tensor(p->name);
        require(place.has_value(), "save_gguf: '", p->name, "' has no place in a GGUF ", Gguf::architecture, " model");
        GgmlType const stored = detail::stored_type(type, p->rows, p->cols);
        w.add_tensor(place->name, detail::gguf_dims(*p), stored, [&, p, order = place->rows](std::span<float> out) {
            auto host = download_as_float<Backend>(ctx, *p);
            reorder_for_gguf(order, detail::gguf_rows(host.data(), p->rows, p->cols), heads, true);
            std::copy(host.begin(), host.end(), out.begin());
        });
    }
    w.write(path);
}

/// Throws unless GGUF file `f` holds a model of `Model`'s family and sizes: its architecture and every hyperparameter
/// save_gguf writes, listing every difference (the model may allow fewer positions than the file's context length).
template <class Model>
void check_gguf_model(GgufFile const& f) {
    using Gguf = gguf_family_of<Model>;
    std::string const file = f.path().string(), arch = Gguf::architecture;
    auto const& found = f.get_string("general.architecture");
    require(found == arch, file, ": general.architecture is '", printable_excerpt(found), "', the model type is a ",
            arch);
    std::string diff;
    for (auto const& h : Gguf::hyperparameters(spec_of<Model>(), Model::config::max_positions)) {
        std::string const key = arch + "." + h.key;
        if (!f.contains(key)) {
            diff += polyalpaca::detail::concat("\n  ", key, ": not in the file");
            continue;
        }
        std::visit(
            [&](auto expected) {
                using V = decltype(expected);
                if constexpr (std::is_same_v<V, bool>) {
                    auto const* v = f.find(key);
                    bool const ok = v->type() == GgufType::Bool && std::get<bool>(v->data) == expected;
                    if (!ok) diff += polyalpaca::detail::concat("\n  ", key, ": model ", expected ? "true" : "false");
                } else if constexpr (std::is_same_v<V, float>) {
                    double const got = f.get_number(key);
                    if (std::abs(got - double(expected)) > 1e-6 * std::abs(double(expected)))
                        diff += polyalpaca::detail::concat("\n  ", key, ": file ", got, ", model ", expected);
                } else {
                    std::int64_t const got = f.get_integer(key);
                    auto const want = std::int64_t(expected);
                    bool const ok = h.key == "context_length" ? got >= want : got == want;
                    if (!ok) diff += polyalpaca::detail::concat("\n  ", key, ": file ", got, ", model ", expected);
                }
            },
            h.value);
    }
    require(diff.empty(), file, ": the file's ", arch, " does not match the model type:", diff);
}

/// Loads every base weight of `net` from a GGUF file of its family (F32, F16, BF16 or Q8_0 tensors, as save_gguf and
/// llama.cpp's converter write them) after check_gguf_model, undoing the GGUF row orders. Every tensor of the file
/// must have a place in the model and every base weight must be in the file; a tied head is read from token_embd.
template <class Model, class Backend, class T>
void load_gguf(typename Backend::Context& ctx, GgufFile const& f, CausalLm<Model, Backend, T>& net) {
    using Gguf = gguf_family_of<Model>;
    std::string const file = f.path().string();
    check_gguf_model<Model>(f);
    std::map<std::string, std::pair<Parameter<T>*, GgufRows>, std::less<>> by_gguf_name;
    for (auto* p : net.parameters().parameters()) {
        if (p->of_adapter()) continue;
        auto const place = Gguf::tensor(p->name);
        require(place.has_value(), file, ": the model's '", p->name, "' has no place in a GGUF ", Gguf::architecture,
                " model");
        by_gguf_name[place->name] = {p, place->rows};
    }
    std::set<std::string, std::less<>> done;
    std::vector<T> values;
    GgufHeads const heads = gguf_heads(spec_of<Model>());
    for (auto const& t : f.tensors()) {
        auto const it = by_gguf_name.find(t.name);
        require(it != by_gguf_name.end(), file, ": tensor '", printable_excerpt(t.name), "' (described at offset ",
                t.info_offset, ") has no place in the model type");
        auto& [p, order] = it->second;
        auto const expected = detail::gguf_dims(*p);
        if (t.dims != expected)
            fail(file, ": tensor '", printable_excerpt(t.name), "' has dims ", shape_string(t.dims), " but '", p->name,
                 "' of shape (", p->rows, ", ", p->cols, ") needs ", shape_string(expected));
        values.resize(std::size_t(p->size()));
        f.read_tensor(t.name, std::span<T>(values));
        reorder_for_gguf(order, detail::gguf_rows(values.data(), p->rows, p->cols), heads, false);
        Backend::upload(ctx, values.data(), p->value, values.size());
        done.insert(t.name);
    }
    std::string missing;
    for (auto const& [name, entry] : by_gguf_name)
        if (!done.contains(name)) missing += (missing.empty() ? "" : ", ") + name;
    require(missing.empty(), file, ": the file lacks tensor(s) the model needs: ", missing);
    net.parameters().initialise_derived(ctx);
}

/// The tokenizer export_hf_to_gguf writes with the model.
struct GgufTokenizerChoice {
    std::filesystem::path file;                ///< tokenizer.model or tokenizer.json; empty: the one beside the weights
    std::optional<std::string> chat_template;  ///< replaces the tokenizer's own; "" writes none
};

/// `choice.file`, else the checkpoint's tokenizer.model, else its tokenizer.json, else none ("").
inline std::filesystem::path tokenizer_file(std::filesystem::path const& dir, GgufTokenizerChoice const& choice) {
    if (!choice.file.empty()) {
        require(std::filesystem::is_regular_file(choice.file), choice.file.string(), ": no such tokenizer file");
        return choice.file;
    }
    for (char const* name : {"tokenizer.model", "tokenizer.json"})
        if (std::filesystem::exists(dir / name)) return dir / name;
    return {};
}

/// What export_hf_to_gguf wrote.
struct GgufExport {
    std::string architecture;
    std::size_t tensors = 0;
    std::vector<std::string> left_out;  ///< checkpoint tensors the GGUF file leaves out (a tied head, buffers)
    std::string tokenizer;              ///< the tokenizer file written with the model ("" for none)
};

/// Writes the HF checkpoint in `dir` (config.json and model.safetensors or its shards: what HF's save_pretrained and
/// polyalpaca's trainers write) as a GGUF file, as save_gguf writes the same model, without building it: the family
/// and sizes come from config.json, each tensor is read, reordered and encoded in turn. A checkpoint tensor the file
/// leaves out by design (a tied head, rotary buffers) is listed; any other without a place is an error naming the
/// checkpoint and the tensor, as is a model_type without a GGUF side. The tokenizer (`tokenizer`, else a
/// tokenizer.model or tokenizer.json beside the weights) is written too: a SentencePiece model as "llama"
/// (io/gguf_vocabulary.hpp), a tokenizer.json as "gpt2" or "llama" (io/gguf_hf_vocabulary.hpp). With `merge`
/// (io/peft_merge.hpp) the file holds the base with that adapter merged in, each weight merged as it is read.
inline GgufExport export_hf_to_gguf(std::filesystem::path const& dir, std::filesystem::path const& out, GgmlType type,
                                    std::string name, GgufTokenizerChoice const& tokenizer = {},
                                    PeftMerge const* merge = nullptr) {
    auto const config = read_hf_config(dir);
    std::string const origin = (dir / "config.json").string();
    ModelSpec const spec = spec_from_config(config, origin);
    auto const checkpoint = SafetensorsCheckpoint::open(dir);
    GgufHeads const heads = gguf_heads(spec);  // outlives the tensors' fill functions, which run in write()
    GgufExport result;
    GgufWriter w;
    bool const known = with_gguf_family(spec.family, [&]<class Gguf>() {
        result.architecture = Gguf::architecture;
        detail::set_model_metadata<Gguf>(w, spec, Gguf::context_length(config), type, std::move(name));
        if (auto const file = tokenizer_file(dir, tokenizer); !file.empty()) {
            auto vocabulary = file.extension() == ".json"
                                  ? llama_cpp_vocabulary_of_tokenizer_json(file, dir / "config.json", spec.vocab)
                                  : llama_cpp_vocabulary_of_sentencepiece(file);
            if (tokenizer.chat_template) vocabulary.chat_template = *tokenizer.chat_template;
            set_tokenizer_metadata(w, vocabulary, spec.vocab, file.string());
            result.tokenizer = file.string();
        } else {
            require(!tokenizer.chat_template || tokenizer.chat_template->empty(), dir.string(),
                    ": a chat template needs a tokenizer to go with, and the checkpoint has none");
        }
        for (auto const& t : checkpoint.tensors()) {
            if (Gguf::left_out(t.name, spec)) {
                result.left_out.push_back(t.name);
                continue;
            }
            auto const place = Gguf::tensor(t.name);
            require(place.has_value(), dir.string(), ": tensor '", printable_excerpt(t.name),
                    "' has no place in a GGUF ", Gguf::architecture, " model");
            require(t.shape.size() == 1 || t.shape.size() == 2, dir.string(), ": tensor '", printable_excerpt(t.name),
                    "' has shape ", shape_string(t.shape), "; a model weight is a vector or a matrix");
            require(is_float_dtype(t.dtype), dir.string(), ": tensor '", printable_excerpt(t.name), "' is ",
                    dtype_name(t.dtype), ", not a float type a GGUF model holds");
            std::int64_t const rows = t.shape.size() == 2 ? t.shape[0] : 1, cols = t.shape.back();
            auto const problem = gguf_rows_problem(place->rows, rows == 1 ? cols : rows, heads);
            require(problem.empty(), dir.string(), ": tensor '", printable_excerpt(t.name), "' ",
                    shape_string(t.shape), ": ", problem, " (config.json's)");
            auto dims = rows > 1 ? std::vector<std::int64_t>{cols, rows} : std::vector<std::int64_t>{cols};
            w.add_tensor(place->name, std::move(dims), detail::stored_type(type, rows, cols),
                         [&, tensor = t.name, rows, cols, order = place->rows](std::span<float> values) {
                             checkpoint.read(tensor, values);
                             if (merge != nullptr) merge->apply(tensor, values, rows, cols);
                             reorder_for_gguf(order, detail::gguf_rows(values.data(), rows, cols), heads, true);
                         });
            ++result.tensors;
        }
    });
    require(known, origin, ": model_type '", spec.family, "' has no GGUF side (", hf_family_names(), " have)");
    if (merge != nullptr) {
        std::map<std::string, std::pair<std::int64_t, std::int64_t>> shapes;
        for (auto const& t : checkpoint.tensors())
            if (t.shape.size() == 2) shapes[t.name] = {t.shape[0], t.shape[1]};
        merge->check_base(shapes, dir.string());
    }
    w.write(out);
    return result;
}

}  // namespace polyalpaca::io
