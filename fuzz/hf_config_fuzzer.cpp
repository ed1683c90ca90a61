/// @file fuzz/hf_config_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a config.json end in a model type (a ModelSpec, the C++ Size struct,
///        the nearest preset) or an Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "polyalpaca/io/hf_config.hpp"
#include "polyalpaca/io/model_source.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace io = polyalpaca::io;
    try {
        auto const config = io::parse_json_text(std::string_view(reinterpret_cast<char const*>(data), size), "fuzz");
        (void)io::matching_preset(config);
        (void)io::nearest_preset(config);
        (void)io::model_source(config, "FuzzSize", "fuzz").header();
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
