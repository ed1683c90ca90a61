/// @file fuzz/llama2c_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a llama2.c checkpoint plus its tokenizer.bin end in a weight layout
///        (every weight and table it places is then read from a copy of the input, so a layout that points outside
///        the file would be caught by AddressSanitizer) and a tokenizer that encodes and decodes a short fixed text,
///        or in an Error. The input is split in two: its first 4 bytes (little-endian) are the checkpoint's length,
///        the checkpoint follows, and the rest is tokenizer.bin.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "polyalpaca/io/llama2c.hpp"
#include "polyalpaca/tokenizer/llama2c_tokenizer.hpp"
#include "polyalpaca/tokenizer/sentencepiece_pipeline.hpp"
#include "temp_file.hpp"

namespace {

/// Sums `bytes` bytes of `file` from `offset`; traps when the range is not inside the file.
float touch(std::vector<char> const& file, std::uint64_t offset, std::uint64_t bytes) {
    if (offset > file.size() || bytes > file.size() - offset) __builtin_trap();
    float sum = 0;
    for (std::uint64_t i = 0; i < bytes; ++i) sum += float(file[std::size_t(offset + i)]);
    return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace io = polyalpaca::io;
    namespace tk = polyalpaca::tokenizer;
    auto const parts = polyalpaca::fuzz::length_prefixed_parts({reinterpret_cast<char const*>(data), size}, 2);
    auto const checkpoint = parts[0];
    auto const tokenizer_bin = parts[1];

    try {
        polyalpaca::fuzz::TempFile const file("model.bin", checkpoint);
        io::MappedFile const mapped(file.path());
        auto const layout = io::llama2c_layout(mapped);
        std::vector<char> const copy(checkpoint.begin(), checkpoint.end());
        if (layout.end != copy.size()) __builtin_trap();
        float sum = 0;
        for (auto const& t : layout.tensors) {
            auto const n = std::uint64_t(t.rows) * std::uint64_t(t.cols);
            sum += touch(copy, t.offset, t.quantized ? n : 4 * n);
            if (t.quantized) sum += touch(copy, t.scale_offset, 4 * (n / std::uint64_t(layout.header.group_size)));
        }
        if (layout.header.version == 0) {
            auto const table = 4 * std::uint64_t(layout.header.seq_len) * std::uint64_t(layout.header.head_dim() / 2);
            sum += touch(copy, layout.freq_cos_offset, table) + touch(copy, layout.freq_sin_offset, table);
        }
        (void)sum;
    } catch (polyalpaca::Error const&) {
    }

    try {
        auto const spec = tk::parse_llama2c_tokenizer(tokenizer_bin, "fuzz/tokenizer.bin");
        auto const p = tk::sentencepiece_pipeline(spec, {});
        auto const ids = p->encode("Hello world! Ça va? 123 <s> \xe2\x96\x81x\n", true);
        (void)p->decode(ids, false);
        (void)p->decode(ids, true);
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
