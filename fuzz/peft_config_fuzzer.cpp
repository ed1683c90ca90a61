/// @file fuzz/peft_config_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a PEFT adapter (adapter_config.json, then adapter_model.safetensors)
///        into a tiny LLaMA with LoRA r 4, alpha 8 on q_proj and v_proj end in loaded LoRA weights or an Error, as
///        load_peft_adapter reads them. The input is split in two: its first 4 bytes (little-endian) are the
///        length of adapter_config.json, which follows; the rest is adapter_model.safetensors.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "polyalpaca/io/peft.hpp"
#include "polyalpaca/polyalpaca.hpp"
#include "temp_file.hpp"

namespace {

namespace pa = polyalpaca;
using LlamaLora = pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    static pa::cpu::Context ctx;
    static pa::CausalLm<LlamaLora, pa::CpuEigen, float> net(ctx);
    std::string_view const input(reinterpret_cast<char const*>(data), size);
    std::uint32_t length = 0;
    if (input.size() >= 4) std::memcpy(&length, input.data(), 4);
    auto const rest = input.substr(std::min<std::size_t>(4, input.size()));
    auto const config = rest.substr(0, std::min<std::size_t>(length, rest.size()));
    pa::fuzz::TempFile const config_file(pa::io::peft_config_file, config);
    pa::fuzz::TempFile const weights_file(pa::io::peft_weights_file, rest.substr(config.size()));
    try {
        pa::io::load_peft_adapter(ctx, net, config_file.path().parent_path());
    } catch (pa::Error const&) {
    }
    return 0;
}
