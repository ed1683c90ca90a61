/// @file fuzz/gguf_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a GGUF file end in its header, metadata and tensor directory (every
///        tensor it describes is then read: its bytes checked to lie inside the input and read from a copy of it,
///        so a directory that points outside the file would be caught by AddressSanitizer, and F32/F16/BF16 ones
///        converted with read_tensor) and, when it carries one, a llama.cpp tokenizer that encodes and decodes a
///        short fixed text; or in an Error.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "polyalpaca/io/gguf.hpp"
#include "polyalpaca/io/gguf_tokenizer.hpp"
#include "temp_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace io = polyalpaca::io;
    std::string_view const input(reinterpret_cast<char const*>(data), size);
    polyalpaca::fuzz::TempFile const file("model.gguf", input);
    std::vector<char> const copy(input.begin(), input.end());
    try {
        io::GgufFile const g(file.path());
        (void)g.version();
        for (auto const& [key, value] : g.metadata()) (void)value.type();
        std::vector<float> values;
        for (auto const& t : g.tensors()) {
            if (t.file_offset > copy.size() || t.bytes > copy.size() - t.file_offset) __builtin_trap();
            auto const bytes = g.tensor_bytes(t.name);
            if (bytes.size() != t.bytes) __builtin_trap();
            unsigned sum = 0;
            for (std::uint64_t i = 0; i < t.bytes; ++i) sum += unsigned(copy[std::size_t(t.file_offset + i)]);
            (void)sum;
            if (t.type == io::GgmlType::F32 || t.type == io::GgmlType::F16 || t.type == io::GgmlType::BF16 ||
                t.type == io::GgmlType::Q8_0) {
                values.resize(std::size_t(t.elements));
                g.read_tensor(t.name, std::span<float>(values));
            }
        }
        if (!g.contains("tokenizer.ggml.model")) return 0;
        auto const tok = polyalpaca::io::gguf_tokenizer(g, file.path().string());
        auto const ids = tok.encode("Hello world! Ça va? 123 <s> \xe2\x96\x81x\n", true);
        (void)tok.decode(ids, false);
        (void)tok.decode(ids, true);
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
