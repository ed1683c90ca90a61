/// @file fuzz/tokenizer_json_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as an HF tokenizer.json end in a tokenizer (which then encodes and decodes
///        a short fixed text) or an Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "polyalpaca/tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    try {
        auto const tok = polyalpaca::Tokenizer::from_hf_json_text(
            std::string_view(reinterpret_cast<char const*>(data), size), "fuzz/tokenizer.json");
        for (bool const special : {false, true}) {
            auto const ids = tok.encode("Hello world! Ça va? 123 <s> \xe2\x96\x81x\n", special);
            (void)tok.decode(ids, false);
            (void)tok.decode(ids, true);
        }
        (void)tok.vocab_size();
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
