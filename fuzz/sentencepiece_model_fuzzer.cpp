/// @file fuzz/sentencepiece_model_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a SentencePiece .model (a ModelProto) end in a model spec, and the
///        tokenizer of both flavours built from it encodes and decodes a short fixed text, or in an Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "polyalpaca/tokenizer/sentencepiece_model.hpp"
#include "polyalpaca/tokenizer/sentencepiece_pipeline.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace tk = polyalpaca::tokenizer;
    try {
        auto const spec =
            tk::parse_sentencepiece_model(std::string_view(reinterpret_cast<char const*>(data), size), "fuzz.model");
        for (auto const flavor : {tk::SentencePieceFlavor::sentencepiece, tk::SentencePieceFlavor::transformers}) {
            auto const p = tk::sentencepiece_pipeline(spec, {.flavor = flavor, .add_bos = true, .add_eos = true});
            auto const ids = p->encode("Hello world! Ça va? 123 <s> \xe2\x96\x81x\n", true);
            (void)p->decode(ids, false);
            (void)p->decode(ids, true);
        }
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
