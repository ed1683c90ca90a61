/// @file fuzz/peft_merge_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a PEFT adapter to merge on the way to GGUF (io/peft_merge.hpp:
///        adapter_config.json, then adapter_model.safetensors) end in an Error, or in a merge that passes check_base
///        against a tiny LLaMA's weights and is then applied to every one of them. The input is split as
///        peft_config_fuzzer's: its first 4 bytes (little-endian) are the length of adapter_config.json, which
///        follows; the rest is adapter_model.safetensors.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/io/peft.hpp"
#include "polyalpaca/io/peft_merge.hpp"
#include "polyalpaca/polyalpaca.hpp"
#include "temp_file.hpp"

namespace {

namespace pa = polyalpaca;

using Shapes = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;

/// The base's tensors as the GGUF export passes them to apply: name -> (rows, cols), a vector as (1, n).
Shapes const& base_tensors() {
    static auto const shapes = [] {
        pa::cpu::Context ctx;
        pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::NoAdapter>, pa::CpuEigen, float> net(ctx);
        Shapes out;
        net.visit_parameters([&](pa::Parameter<float>& p) {
            out[p.name] = p.rows == 1 || p.cols == 1 ? std::pair<std::int64_t, std::int64_t>{1, p.size()}
                                                     : std::pair<std::int64_t, std::int64_t>{p.rows, p.cols};
        });
        return out;
    }();
    return shapes;
}

/// Its matrices, as the export passes them to check_base.
Shapes const& base_matrices() {
    static auto const shapes = [] {
        Shapes out;
        for (auto const& [name, shape] : base_tensors())
            if (shape.first > 1) out[name] = shape;
        return out;
    }();
    return shapes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const parts = pa::fuzz::length_prefixed_parts({reinterpret_cast<char const*>(data), size}, 2);
    pa::fuzz::TempFile const config_file(pa::io::peft_config_file, parts[0]);
    pa::fuzz::TempFile const weights_file(pa::io::peft_weights_file, parts[1]);
    try {
        auto const merge = pa::io::PeftMerge::open(config_file.path().parent_path());
        merge.check_base(base_matrices(), "the tiny LLaMA");
        for (auto const& [name, shape] : base_tensors()) {
            std::vector<float> values(std::size_t(shape.first * shape.second), 0.5f);
            merge.apply(name, values, shape.first, shape.second);
        }
    } catch (pa::Error const&) {
    }
    return 0;
}
