// GGUF files written byte by byte here: a valid file parses into typed metadata and tensors; malicious or broken
// files (bad magic, truncation at every length, counts and lengths past the end, bad types, dims, offsets) give an
// Error that names the file, the offset and the reason.
#include <polyalpaca/io/gguf.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <limits>

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
using Catch::Contains;

namespace {

/// Little-endian GGUF bytes, appended field by field.
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
    Bytes& key(std::string const& k, io::GgufType t) { return str(k).put(std::uint32_t(t)); }
    Bytes& tensor(std::string const& name, std::vector<std::uint64_t> const& dims, io::GgmlType t,
                  std::uint64_t offset) {
        str(name).put<std::uint32_t>(std::uint32_t(dims.size()));
        for (auto d : dims) put(d);
        return put(std::uint32_t(t)).put(offset);
    }
    Bytes& pad(std::size_t alignment) {
        data.resize((data.size() + alignment - 1) / alignment * alignment, '\0');
        return *this;
    }
};

Bytes header(std::uint64_t tensors, std::uint64_t kvs, std::uint32_t version = 3) {
    Bytes b;
    b.data = "GGUF";
    b.put(version).put(tensors).put(kvs);
    return b;
}

/// A file in the temp directory, removed at the end of the test.
struct TempFile {
    std::filesystem::path path;
    explicit TempFile(std::string const& bytes, std::string const& stem = "gguf_reader") {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               (stem + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".gguf");
        std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    }
    ~TempFile() { std::filesystem::remove(path); }
};

std::uint16_t half_bits(float f) { return io::float_to_half(f); }

/// A valid file: every scalar type, arrays, and F32 / F16 / BF16 / Q8_0 tensors, alignment 64.
std::string valid_file() {
    Bytes b = header(4, 17);
    b.key("general.architecture", io::GgufType::String).str("llama");
    b.key("general.alignment", io::GgufType::U32).put<std::uint32_t>(64);
    b.key("t.u8", io::GgufType::U8).put<std::uint8_t>(200);
    b.key("t.i8", io::GgufType::I8).put<std::int8_t>(-100);
    b.key("t.u16", io::GgufType::U16).put<std::uint16_t>(60000);
    b.key("t.i16", io::GgufType::I16).put<std::int16_t>(-30000);
    b.key("t.i32", io::GgufType::I32).put<std::int32_t>(-2000000000);
    b.key("t.f32", io::GgufType::F32).put<float>(0.25f);
    b.key("t.bool", io::GgufType::Bool).put<std::uint8_t>(1);
    b.key("t.u64", io::GgufType::U64).put<std::uint64_t>(std::uint64_t(1) << 40);
    b.key("t.i64", io::GgufType::I64).put<std::int64_t>(-(std::int64_t(1) << 40));
    b.key("t.f64", io::GgufType::F64).put<double>(-1.5);
    b.key("tokenizer.ggml.model", io::GgufType::String).str("gpt2");
    b.key("tokenizer.ggml.tokens", io::GgufType::Array).put(std::uint32_t(io::GgufType::String)).put<std::uint64_t>(3);
    b.str("a").str("b").str("ab");
    b.key("tokenizer.ggml.merges", io::GgufType::Array).put(std::uint32_t(io::GgufType::String)).put<std::uint64_t>(1);
    b.str("a b");
    b.key("tokenizer.ggml.token_type", io::GgufType::Array).put(std::uint32_t(io::GgufType::I32)).put<std::uint64_t>(3);
    b.put<std::int32_t>(1).put<std::int32_t>(1).put<std::int32_t>(3);
    b.key("tokenizer.ggml.eos_token_id", io::GgufType::U32).put<std::uint32_t>(2);
    // Tensors: f32 [3, 2] at 0 (24 bytes), f16 [4] at 64, bf16 [2] at 128, q8_0 [32] at 192 (34 bytes).
    b.tensor("w.f32", {3, 2}, io::GgmlType::F32, 0);
    b.tensor("w.f16", {4}, io::GgmlType::F16, 64);
    b.tensor("w.bf16", {2}, io::GgmlType::BF16, 128);
    b.tensor("w.q8", {32}, io::GgmlType::Q8_0, 192);
    b.pad(64);
    for (float x : {1.f, -2.f, 3.5f, 0.f, 1e-3f, -7.f}) b.put(x);
    b.pad(64);
    for (float x : {1.f, -0.5f, 65504.f, 0.1f}) b.put(half_bits(x));
    b.pad(64);
    b.put(io::float_to_bf16(3.f)).put(io::float_to_bf16(-0.75f));
    b.pad(64);
    b.data.append(34, '\x01');
    return b.data;
}

/// The prefix of a valid minimal file up to (not including) its only key-value, for malicious metadata.
Bytes one_kv() { return header(0, 1); }

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (pa::Error const& e) {
        return e.what();
    }
    return "(no error)";
}

std::string parse_error(std::string const& bytes) {
    TempFile f(bytes);
    auto const message = error_of([&] { io::GgufFile g(f.path); });
    CHECK_THAT(message, Contains(f.path.filename().string()));  // every message names the file
    return message;
}

}  // namespace

TEST_CASE("a valid GGUF file gives typed metadata and its tensor directory", "[io][gguf]") {
    TempFile f(valid_file());
    io::GgufFile g(f.path);
    CHECK(g.version() == 3);
    CHECK(g.alignment() == 64);
    CHECK(g.data_offset() % 64 == 0);
    CHECK(g.metadata().size() == 17);
    CHECK(g.get_string("general.architecture") == "llama");
    CHECK(g.get<std::uint8_t>("t.u8") == 200);
    CHECK(g.get<std::int8_t>("t.i8") == -100);
    CHECK(g.get<std::uint16_t>("t.u16") == 60000);
    CHECK(g.get<std::int16_t>("t.i16") == -30000);
    CHECK(g.get<std::int32_t>("t.i32") == -2000000000);
    CHECK(g.get<float>("t.f32") == 0.25f);
    CHECK(g.get_bool("t.bool"));
    CHECK(g.get<std::uint64_t>("t.u64") == std::uint64_t(1) << 40);
    CHECK(g.get_integer("t.i64") == -(std::int64_t(1) << 40));
    CHECK(g.get_integer("t.u16") == 60000);
    CHECK(g.get_number("t.f64") == -1.5);
    CHECK(g.get_number("t.i8") == -100.0);
    CHECK(g.find("t.f64")->type() == io::GgufType::F64);
    CHECK(g.get_array<std::string>("tokenizer.ggml.tokens") == std::vector<std::string>{"a", "b", "ab"});
    CHECK(g.get<io::GgufArray>("tokenizer.ggml.token_type").element_type() == io::GgufType::I32);

    REQUIRE(g.tensors().size() == 4);
    auto const& w = g.tensor("w.f32");
    CHECK(w.type == io::GgmlType::F32);
    CHECK(w.dims == std::vector<std::int64_t>{3, 2});
    CHECK(w.elements == 6);
    CHECK(w.bytes == 24);
    CHECK(w.file_offset == g.data_offset());
    CHECK(g.tensor("w.q8").bytes == 34);
    CHECK(g.tensor("w.bf16").file_offset == g.data_offset() + 128);

    std::vector<double> f32(6);
    g.read_tensor("w.f32", std::span<double>(f32));
    CHECK(f32 == std::vector<double>{1, -2, 3.5, 0, double(1e-3f), -7});
    std::vector<float> f16(4);
    g.read_tensor("w.f16", std::span<float>(f16));
    CHECK(f16 == std::vector<float>{1.f, -0.5f, 65504.f, io::half_to_float(half_bits(0.1f))});
    std::vector<float> bf16(2);
    g.read_tensor("w.bf16", std::span<float>(bf16));
    CHECK(bf16 == std::vector<float>{3.f, -0.75f});
    CHECK(g.tensor_bytes("w.q8").size() == 34);
}

TEST_CASE("GGUF accessors name the key, its type and the type asked for", "[io][gguf]") {
    TempFile f(valid_file());
    io::GgufFile g(f.path);
    auto const file = f.path.filename().string();
    CHECK_THAT(error_of([&] { g.get_string("t.u8"); }),
               Contains(file) && Contains("'t.u8' has type u8, expected string"));
    CHECK_THAT(error_of([&] { g.get_integer("nope"); }), Contains("metadata key 'nope' is missing"));
    CHECK_THAT(error_of([&] { g.get_integer("t.f32"); }), Contains("'t.f32' has type f32, expected an integer"));
    CHECK_THAT(error_of([&] { g.get_array<float>("tokenizer.ggml.tokens"); }),
               Contains("elements of type string, expected f32"));
    CHECK_THAT(error_of([&] { g.tensor("missing.weight"); }), Contains("no tensor named 'missing.weight'"));
    std::vector<float> out(32);
    g.read_tensor("w.q8", std::span<float>(out));  // Q8_0 dequantized: each block's fp16 scale times its int8 values
    for (float x : out) CHECK(x == io::half_to_float(0x0101));
    CHECK_THAT(error_of([&] { g.read_tensor("w.f32", std::span<float>(out)); }),
               Contains("'w.f32' has 6 elements but the destination holds 32"));
}

TEST_CASE("GGUF vocabulary: tokens, merges, types and special ids", "[io][gguf]") {
    TempFile f(valid_file());
    auto const v = io::GgufFile(f.path).vocabulary();
    CHECK(v.model == "gpt2");
    CHECK(v.pre.empty());
    CHECK(v.tokens.size() == 3);
    CHECK(v.scores.empty());
    CHECK(v.merges == std::vector<std::string>{"a b"});
    CHECK(v.token_types == std::vector<std::int32_t>{1, 1, 3});
    CHECK(v.eos_id == 2);
    CHECK(v.bos_id == -1);
    CHECK_FALSE(v.add_bos);  // gpt2 without add_bos_token

    Bytes b = header(0, 4);
    b.key("tokenizer.ggml.model", io::GgufType::String).str("llama");
    b.key("tokenizer.ggml.tokens", io::GgufType::Array).put(std::uint32_t(io::GgufType::String)).put<std::uint64_t>(2);
    b.str("<unk>").str("<s>");
    b.key("tokenizer.ggml.scores", io::GgufType::Array).put(std::uint32_t(io::GgufType::F32)).put<std::uint64_t>(3);
    b.put(0.f).put(0.f).put(0.f);
    b.key("tokenizer.ggml.bos_token_id", io::GgufType::U32).put<std::uint32_t>(1);
    TempFile bad_scores(b.data);
    CHECK_THAT(error_of([&] { io::GgufFile(bad_scores.path).vocabulary(); }),
               Contains(bad_scores.path.filename().string()) &&
                   Contains("tokenizer.ggml.scores has 3 entries but there are 2 tokens"));

    Bytes c = header(0, 3);
    c.key("tokenizer.ggml.model", io::GgufType::String).str("llama");
    c.key("tokenizer.ggml.tokens", io::GgufType::Array).put(std::uint32_t(io::GgufType::String)).put<std::uint64_t>(2);
    c.str("<unk>").str("<s>");
    c.key("tokenizer.ggml.bos_token_id", io::GgufType::U32).put<std::uint32_t>(2);
    TempFile bad_bos(c.data);
    CHECK_THAT(error_of([&] { io::GgufFile(bad_bos.path).vocabulary(); }),
               Contains("tokenizer.ggml.bos_token_id is 2, outside the vocabulary of 2 tokens"));
}

TEST_CASE("GGUF: a wrong magic or version is refused", "[io][gguf][bad_input]") {
    auto bytes = valid_file();
    bytes[0] = 'G';
    bytes[3] = 'L';
    CHECK_THAT(parse_error(bytes), Contains("at offset 0") && Contains("bad magic \"GGUL\""));
    CHECK_THAT(parse_error(header(0, 0, 1).data), Contains("at offset 4") && Contains("unsupported GGUF version 1"));
    CHECK_THAT(parse_error(header(0, 0, 0x03000000).data), Contains("big-endian GGUF"));
    CHECK_THAT(parse_error("GG"), Contains("at offset 0: truncated: magic needs 4 bytes but only 2 remain"));
}

TEST_CASE("GGUF: every truncation of a valid file is an Error", "[io][gguf][bad_input]") {
    auto const bytes = valid_file();
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        TempFile f(bytes.substr(0, n));
        auto const message = error_of([&] { io::GgufFile g(f.path); });
        INFO("prefix of " << n << " bytes: " << message);
        CHECK_THAT(message, Contains(f.path.filename().string()) &&
                                (Contains("truncated") || Contains("past the end") || Contains("exceeds") ||
                                 Contains("cannot fit") || Contains("claims")));
    }
}

TEST_CASE("GGUF: counts, lengths and types that the file cannot hold", "[io][gguf][bad_input]") {
    constexpr auto huge = std::numeric_limits<std::uint64_t>::max();
    CHECK_THAT(parse_error(header(huge, 0).data),
               Contains("at offset 8: tensor count 18446744073709551615 cannot fit"));
    CHECK_THAT(parse_error(header(0, 1000).data), Contains("at offset 16: metadata count 1000 cannot fit"));

    Bytes key_length = one_kv();
    key_length.put<std::uint64_t>(huge).data += "padding-bytes";
    CHECK_THAT(parse_error(key_length.data),
               Contains("at offset 24: metadata key: string length 18446744073709551615 exceeds the 13 bytes left"));

    Bytes value_length = one_kv();
    value_length.key("k", io::GgufType::String).put<std::uint64_t>(1u << 20).data += "abc";
    CHECK_THAT(parse_error(value_length.data),
               Contains("the value of key 'k': string length 1048576 exceeds the 3 bytes"));

    Bytes array_length = one_kv();
    array_length.key("arr", io::GgufType::Array).put(std::uint32_t(io::GgufType::U32)).put<std::uint64_t>(huge / 2);
    array_length.put<std::uint32_t>(7);
    CHECK_THAT(parse_error(array_length.data), Contains("array 'arr' claims 9223372036854775807 elements of type u32"));

    Bytes element_length = one_kv();
    element_length.key("arr", io::GgufType::Array).put(std::uint32_t(io::GgufType::String)).put<std::uint64_t>(2);
    element_length.str("ok").put<std::uint64_t>(999).data += "short";
    CHECK_THAT(parse_error(element_length.data), Contains("an element of array 'arr': string length 999 exceeds"));

    Bytes bad_type = one_kv();
    bad_type.key("k", io::GgufType(13)).put<std::uint32_t>(0);
    CHECK_THAT(parse_error(bad_type.data), Contains("key 'k' has unknown value type 13"));

    Bytes nested = one_kv();
    nested.key("k", io::GgufType::Array).put(std::uint32_t(io::GgufType::Array)).put<std::uint64_t>(0);
    CHECK_THAT(parse_error(nested.data), Contains("'k' is an array of arrays"));

    Bytes bad_bool = one_kv();
    bad_bool.key("flag", io::GgufType::Bool).put<std::uint8_t>(2);
    CHECK_THAT(parse_error(bad_bool.data), Contains("the value of key 'flag' is a bool but holds the byte 2"));

    Bytes duplicate = header(0, 2);
    duplicate.key("k", io::GgufType::U8).put<std::uint8_t>(1).key("k", io::GgufType::U8).put<std::uint8_t>(2);
    CHECK_THAT(parse_error(duplicate.data), Contains("duplicate metadata key 'k'"));

    Bytes alignment = one_kv();
    alignment.key("general.alignment", io::GgufType::U32).put<std::uint32_t>(48);
    CHECK_THAT(parse_error(alignment.data), Contains("general.alignment is 48, which is not a power of two"));
    Bytes alignment_type = one_kv();
    alignment_type.key("general.alignment", io::GgufType::U64).put<std::uint64_t>(32);
    CHECK_THAT(parse_error(alignment_type.data), Contains("general.alignment has type u64, expected u32"));
}

TEST_CASE("GGUF: tensor dims, types and offsets are checked", "[io][gguf][bad_input]") {
    auto one_tensor = [](std::vector<std::uint64_t> const& dims, io::GgmlType t, std::uint64_t offset,
                         std::size_t data_bytes) {
        Bytes b = header(1, 0);
        b.tensor("w", dims, t, offset).pad(32);
        b.data.append(data_bytes, '\0');
        return b.data;
    };
    {  // sanity: the same construction with consistent numbers parses
        TempFile ok(one_tensor({4, 2}, io::GgmlType::F32, 0, 32));
        CHECK(io::GgufFile(ok.path).tensor("w").elements == 8);
    }
    CHECK_THAT(parse_error(one_tensor({1, 1, 1, 1, 1}, io::GgmlType::F32, 0, 64)),
               Contains("at offset 33: tensor 'w' has 5 dimensions (expected 1 to 4)"));
    CHECK_THAT(parse_error(one_tensor({std::uint64_t(1) << 40, std::uint64_t(1) << 40}, io::GgmlType::F32, 0, 64)),
               Contains("tensor 'w': the element count overflows at dimension 1"));
    CHECK_THAT(parse_error(one_tensor({8}, io::GgmlType(99), 0, 64)), Contains("tensor 'w' has unknown ggml type 99"));
    CHECK_THAT(parse_error(one_tensor({33}, io::GgmlType::Q4_0, 0, 64)),
               Contains("dimension 0 (33) is not a multiple of the Q4_0 block size 32"));
    CHECK_THAT(parse_error(one_tensor({8}, io::GgmlType::F32, 16, 64)),
               Contains("tensor 'w' has data offset 16, not a multiple of the alignment 32"));
    CHECK_THAT(
        parse_error(one_tensor({8}, io::GgmlType::F32, 32, 48)),
        Contains("tensor 'w' (described at offset 24): its 32 bytes at data offset 32 end past the end of the file"));
    CHECK_THAT(parse_error(one_tensor({8}, io::GgmlType::F32, std::uint64_t(-32), 48)),
               Contains("end past the end of the file"));

    Bytes overlap = header(2, 0);
    overlap.tensor("a", {16}, io::GgmlType::F32, 0).tensor("b", {8}, io::GgmlType::F32, 32).pad(32);
    overlap.data.append(64, '\0');
    CHECK_THAT(parse_error(overlap.data),
               Contains("tensor 'b' (data offset 32) overlaps tensor 'a' (data offset 0, 64 bytes)"));

    Bytes duplicate = header(2, 0);
    duplicate.tensor("a", {8}, io::GgmlType::F32, 0).tensor("a", {8}, io::GgmlType::F32, 32).pad(32);
    duplicate.data.append(64, '\0');
    CHECK_THAT(parse_error(duplicate.data), Contains("duplicate tensor name 'a'"));

    Bytes no_data = header(1, 0);
    no_data.tensor("w", {8}, io::GgmlType::F32, 0);
    CHECK_THAT(parse_error(no_data.data),
               Contains("the data section would start at offset 64, past the end of the file"));
}
