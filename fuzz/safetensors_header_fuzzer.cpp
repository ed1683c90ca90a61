/// @file fuzz/safetensors_header_fuzzer.cpp
/// @brief libFuzzer target: any bytes given to the safetensors header parser end in a valid header or an Error.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "polyalpaca/io/safetensors_file.hpp"
#include "polyalpaca/io/safetensors_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace io = polyalpaca::io;
    auto const bytes = std::as_bytes(std::span(data, size));
    try {
        auto const header = io::parse_safetensors_header(bytes, "fuzz input");
        // A header that passed validation must describe tensors inside the input: read every one of them.
        std::vector<float> values;
        for (auto const& t : header.tensors) {
            auto const raw = bytes.subspan(header.data_offset + t.begin, t.byte_size());
            if (!io::is_float_dtype(t.dtype)) continue;
            values.resize(std::size_t(t.element_count()));
            io::detail::convert_to(t.dtype, raw, std::span<float>(values));
        }
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
