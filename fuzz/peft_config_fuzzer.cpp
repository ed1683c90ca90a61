/// @file fuzz/peft_config_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a PEFT adapter (adapter_config.json, then adapter_model.safetensors)
///        into a tiny LLaMA with LoRA r 4, alpha 8 on q_proj and v_proj end in loaded LoRA weights or an Error, as
///        load_peft_adapter reads them. The input is split in two: its first 4 bytes (little-endian) are the
///        length of adapter_config.json, which follows; the rest is adapter_model.safetensors.
#include <cstddef>
#include <cstdint>
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
    auto const parts = pa::fuzz::length_prefixed_parts({reinterpret_cast<char const*>(data), size}, 2);
    pa::fuzz::TempFile const config_file(pa::io::peft_config_file, parts[0]);
    pa::fuzz::TempFile const weights_file(pa::io::peft_weights_file, parts[1]);
    try {
        pa::io::load_peft_adapter(ctx, net, config_file.path().parent_path());
    } catch (pa::Error const&) {
    }
    return 0;
}
