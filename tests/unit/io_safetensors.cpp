// safetensors: exact reads of files the Python library wrote, byte-exact writes, round trips, and a battery of
// malicious or truncated files that must each end in an Error naming the problem.
#include <polyalpaca/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace io = polyalpaca::io;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path golden() { return polyalpaca::testing::golden_dir() / "safetensors"; }

json expected() { return io::read_json_file(golden() / "expected.json"); }

/// A fresh empty directory under the system temp dir.
fs::path scratch_dir(std::string const& name) {
    auto dir = fs::temp_directory_path() / ("polyalpaca_io_safetensors_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::string file_bytes(fs::path const& p) { return io::read_text_file(p); }

void write_bytes(fs::path const& p, std::string const& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

/// A safetensors file from a header text (size field computed unless given) and a data section.
std::string make_file(std::string const& header, std::string const& data, std::uint64_t header_size = ~0ull) {
    std::uint64_t const n = header_size == ~0ull ? header.size() : header_size;
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &n, 8);
    return bytes + header + data;
}

/// Opens bytes written to a temp file; returns the Error message (empty when it opened).
std::string open_error(std::string const& bytes) {
    auto const path = scratch_dir("bad") / "bad.safetensors";
    write_bytes(path, bytes);
    try {
        io::SafetensorsFile::open(path);
    } catch (polyalpaca::Error const& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("dtype names and sizes follow safetensors", "[io][dtype]") {
    CHECK(io::parse_dtype("BF16") == io::DType::BF16);
    CHECK(io::parse_dtype("F8_E4M3") == io::DType::F8E4M3);
    CHECK_FALSE(io::parse_dtype("f32").has_value());
    CHECK_FALSE(io::parse_dtype("F4").has_value());
    CHECK(io::size_of(io::DType::F16) == 2);
    CHECK(io::size_of(io::DType::F64) == 8);
    CHECK(io::size_of(io::DType::Bool) == 1);
    CHECK(io::dtype_name(io::DType::I64) == "I64");
}

TEST_CASE("fp16 and bf16 conversions round exactly as torch does", "[io][dtype][golden]") {
    auto const cases = expected()["conversions"];
    REQUIRE(cases.size() > 90);
    for (auto const& c : cases) {
        auto const f = std::bit_cast<float>(c["f32"].get<std::uint32_t>());
        INFO("float32 bits " << std::hex << c["f32"].get<std::uint32_t>());
        CHECK(io::float_to_half(f) == c["f16"].get<std::uint16_t>());
        CHECK(io::float_to_bf16(f) == c["bf16"].get<std::uint16_t>());
    }
    // Every half widens exactly and narrows back to itself (NaNs excepted).
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        REQUIRE(io::float_to_half(io::half_to_float(std::uint16_t(h))) == h);
    }
    CHECK(io::half_to_float(0x0001) == std::ldexp(1.0f, -24));
    CHECK(std::isnan(io::half_to_float(0x7e00)));
    CHECK(std::isnan(io::bf16_to_float(io::float_to_bf16(std::nanf("")))));
}

TEST_CASE("a file written by the safetensors library reads exactly", "[io][safetensors][golden]") {
    auto const want = expected()["mixed"];
    auto const file = io::SafetensorsFile::open(golden() / "mixed.safetensors");
    CHECK(file.metadata() == want["metadata"].get<std::map<std::string, std::string>>());
    REQUIRE(file.tensors().size() == want["tensors"].size());
    for (auto const& [name, t] : want["tensors"].items()) {
        INFO(name);
        auto const* info = file.find(name);
        REQUIRE(info != nullptr);
        CHECK(info->shape == t["shape"].get<std::vector<std::int64_t>>());
        if (t["dtype"] == "int64") {
            CHECK(info->dtype == io::DType::I64);
            auto const raw = file.raw(name);
            std::vector<std::int64_t> ids(raw.size() / 8);
            std::memcpy(ids.data(), raw.data(), raw.size());
            CHECK(ids == t["values"].get<std::vector<std::int64_t>>());
            std::vector<float> out(ids.size());
            CHECK_THROWS_WITH(file.read(name, std::span<float>(out)), Catch::Contains("cannot be read as floating"));
            continue;
        }
        auto const values = t["values"].get<std::vector<double>>();
        std::vector<float> out(values.size());
        file.read(name, std::span<float>(out));
        for (std::size_t i = 0; i < values.size(); ++i) CHECK(out[i] == float(values[i]));
        if (t["dtype"] == "float64") {
            std::vector<double> exact(values.size());
            file.read(name, std::span<double>(exact));
            CHECK(exact == values);
        }
    }
    CHECK(file.find("absent") == nullptr);
    std::vector<float> wrong(5);
    CHECK_THROWS_WITH(
        file.read("model.embed.weight", std::span<float>(wrong)),
        Catch::Contains("model.embed.weight") && Catch::Contains("holds 12 elements") && Catch::Contains("has 5"));
    CHECK_THROWS_WITH(file.raw("absent"), Catch::Contains("no tensor \"absent\""));
}

TEST_CASE("a sharded checkpoint reads across its shards", "[io][safetensors][golden]") {
    auto const want = expected()["sharded"];
    auto const ckpt = io::SafetensorsCheckpoint::open(golden() / "sharded");
    CHECK(ckpt.shard_count() == want["shard_count"].get<std::size_t>());
    CHECK(ckpt.tensors().size() == want["tensors"].size());
    for (auto const& [name, t] : want["tensors"].items()) {
        auto const values = t["values"].get<std::vector<double>>();
        std::vector<float> out(values.size());
        ckpt.read(name, std::span<float>(out));
        for (std::size_t i = 0; i < values.size(); ++i) CHECK(out[i] == float(values[i]));
    }
    CHECK(ckpt.file_of("layer.1.weight").path().filename() == "model-00002-of-00002.safetensors");
}

TEST_CASE("write_safetensors writes the same bytes as the Python library", "[io][safetensors][golden]") {
    auto const want = expected()["writer_case"];
    std::vector<std::vector<float>> values;
    std::vector<io::TensorToWrite> tensors;
    for (auto const& t : want["tensors"]) values.push_back(t["values"].get<std::vector<float>>());
    for (std::size_t i = 0; i < values.size(); ++i) {
        auto const& t = want["tensors"][i];
        tensors.push_back({t["name"], *io::parse_dtype(t["dtype"].get<std::string>()),
                           t["shape"].get<std::vector<std::int64_t>>(), values[i]});
    }
    auto const path = scratch_dir("writer") / "ours.safetensors";
    io::write_safetensors(path, tensors, want["metadata"].get<std::map<std::string, std::string>>());
    CHECK(file_bytes(path) == file_bytes(golden() / "writer_case.safetensors"));
    CHECK(fs::directory_iterator(path.parent_path())->path() == path);  // no temp file left behind
}

TEST_CASE("write then read round-trips F32 exactly and F16 / BF16 to the rounded values", "[io][safetensors]") {
    std::vector<float> a{1.0f, -2.5f, 0.1f, 3.0e-8f, 70000.0f, -0.0f};
    std::vector<float> s{42.0f};
    auto const path = scratch_dir("roundtrip") / "t.safetensors";
    io::write_safetensors(path,
                          {{"a32", io::DType::F32, {2, 3}, a},
                           {"a16", io::DType::F16, {6}, a},
                           {"ab16", io::DType::BF16, {3, 2}, a},
                           {"scalar", io::DType::F32, {}, s}},
                          {{"format", "pt"}, {"k\"ey", "v\nalue"}});
    auto const f = io::SafetensorsFile::open(path);
    CHECK(f.metadata().at("k\"ey") == "v\nalue");
    std::vector<float> out(6);
    f.read("a32", std::span<float>(out));
    CHECK(out == a);
    f.read("a16", std::span<float>(out));
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(out[i] == io::half_to_float(io::float_to_half(a[i])));
    CHECK(std::isinf(out[4]));
    f.read("ab16", std::span<float>(out));
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(out[i] == io::bf16_to_float(io::float_to_bf16(a[i])));
    CHECK(f.find("scalar")->shape.empty());
    CHECK(f.find("ab16")->shape == std::vector<std::int64_t>{3, 2});

    CHECK_THROWS_WITH(io::write_safetensors(path, {{"x", io::DType::F32, {2, 2}, a}}),
                      Catch::Contains("'x'") && Catch::Contains("shape holds 4 elements but 6 values"));
    CHECK_THROWS_WITH(io::write_safetensors(path, {{"x", io::DType::I32, {6}, a}}), Catch::Contains("not one of"));
    CHECK_THROWS_WITH(io::write_safetensors(path, {{"x", io::DType::F32, {6}, a}, {"x", io::DType::F16, {6}, a}}),
                      Catch::Contains("given twice"));
    CHECK(io::SafetensorsFile::open(path).find("a32") != nullptr);  // failed writes left the file as it was
}

TEST_CASE("malicious and truncated safetensors files are refused with a reason", "[io][safetensors][bad]") {
    std::string const good_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    std::string const data(8, '\0');
    REQUIRE(open_error(make_file("{" + good_entry + "}", data)).empty());

    auto check = [&](std::string const& bytes, std::string const& reason) {
        auto const message = open_error(bytes);
        INFO(message);
        CHECK_THAT(message, Catch::Contains("bad.safetensors") && Catch::Contains(reason));
    };
    check("", "0 bytes, too short for the 8-byte header size");
    check(std::string("\x10\0\0", 3), "too short");
    check(make_file("{}", "", 4096), "header size 4096 runs past the end of the file");
    check(make_file("{}", "", 0x7fffffffffffffffull), "exceeds the limit of 100000000 bytes");
    check(make_file("[1,2]", ""), "does not start with a JSON object");
    check(make_file(R"({"w":{"dtype":"F32",)", ""), "header is not valid JSON");
    check(make_file("{" + good_entry + "} trailing", data), "header is not valid JSON");
    check(make_file("{\"w\":[1]}", ""), "tensor \"w\": entry is a array of 1 elements");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2]}})", ""), "tensor \"w\": has no \"data_offsets\"");
    check(make_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
          "shape dimension 0 is negative (-2)");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data), "not an integer");
    check(make_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data),
          "overflows the element count");
    check(make_file(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", data),
          "overflows the element count");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", data),
          "run past the end of the data section (8 bytes)");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data), "begin after end");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", data),
          "hold a number -8, not a non-negative integer");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data), "not [begin, end]");
    check(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                    data),
          "tensor \"a\" [0, 8) overlaps tensor \"b\" [4, 8)");
    check(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
          "hold 8 bytes but F32 shape [3] needs 12");
    check(make_file(R"({"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,8]}})", data),
          "unknown or unsupported dtype \"Q4_K\"");
    check(make_file(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", data), "\"dtype\" is a number");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", data),
          "unknown field \"extra\"");
    check(make_file(R"({"__metadata__":{"format":1},)" + good_entry + "}", data),
          "\"__metadata__\" value of \"format\" is a number 1, not a string");
    check(make_file(R"({"__metadata__":"pt"})", ""), "\"__metadata__\" is a string, not an object");
    check(make_file("{" + good_entry + "," + good_entry + "}", data), "names \"w\" twice");
    check(make_file("{\"w\xff\":1}", ""), "header is not valid JSON");
    check(make_file(std::string(200000, '['), ""), "does not start with a JSON object");
    std::string const deep = std::string(100000, '[') + std::string(100000, ']');
    check(make_file("{\"w\":" + deep + "}", ""), "entry is a array");
    check(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,)" + deep + "]}}", data),
          "\"data_offsets\" hold a array of 1 elements");
    check(make_file(R"({"w":{"dtype":"F32","data_offsets":[0,8],"shape":)" + deep + "}}", data),
          "shape dimension 0 is a array of 1 elements, not an integer");
}

TEST_CASE("a sharded checkpoint whose index disagrees with its shards is refused", "[io][safetensors][bad]") {
    auto const dir = scratch_dir("shards");
    std::vector<float> v{1, 2};
    io::write_safetensors(dir / "s1.safetensors", {{"a", io::DType::F32, {2}, v}, {"b", io::DType::F32, {2}, v}});
    io::write_safetensors(dir / "s2.safetensors", {{"c", io::DType::F32, {2}, v}, {"a", io::DType::F32, {2}, v}});
    auto with_index = [&](json const& weight_map) {
        io::write_file_atomically(dir / "model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
        try {
            io::SafetensorsCheckpoint::open(dir);
        } catch (polyalpaca::Error const& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK_THAT(with_index({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}}),
               Catch::Contains("tensor \"a\" is in 's2.safetensors' but weight_map puts it in \"s1.safetensors\""));
    CHECK_THAT(with_index({{"a", "s1.safetensors"}, {"b", "missing.safetensors"}}),
               Catch::Contains("names shard 'missing.safetensors', which does not exist"));
    CHECK_THAT(with_index({{"a", "../s1.safetensors"}}), Catch::Contains("not a file in the checkpoint directory"));
    CHECK_THAT(with_index({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"x", "s1.safetensors"}}),
               Catch::Contains("puts tensor \"x\" in 's1.safetensors', which does not hold it"));
    CHECK_THAT(with_index({{"a", "s1.safetensors"}}),
               Catch::Contains("holds tensor \"b\", which weight_map does not list"));
    CHECK_THAT(with_index({{"a", 3}}), Catch::Contains("weight_map entry \"a\" is a number"));
    io::write_file_atomically(dir / "model.safetensors.index.json", "{\"weight_map\": ");
    CHECK_THROWS_WITH(io::SafetensorsCheckpoint::open(dir), Catch::Contains("is not valid JSON"));
    CHECK_THROWS_WITH(io::SafetensorsCheckpoint::open(scratch_dir("empty")),
                      Catch::Contains("holds neither model.safetensors nor model.safetensors.index.json"));
}
