/// @file tests/golden/model_bloom.cpp
/// @brief BLOOM (tiny random checkpoint) against HF transformers and PEFT: logits, losses, gradients, AdamW, LoRA.
#include "model_parity.hpp"

namespace pa = polyalpaca;

using BloomTiny = pa::Bloom<pa::bloom::SizeTiny>;
using BloomTinyLora = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv>>;

TEMPLATE_TEST_CASE("BLOOM matches HF transformers: logits, losses, gradients, one AdamW step", "[golden][bloom]",
                   float, double) {
    pa::testing::check_base_parity<BloomTiny, TestType>("bloom");
}

TEMPLATE_TEST_CASE("BLOOM with a PEFT LoRA adapter matches PEFT: logits, loss, adapter gradients",
                   "[golden][bloom][lora]", float, double) {
    pa::testing::check_lora_parity<BloomTinyLora, TestType>("bloom", 1);
}

TEMPLATE_TEST_CASE("BLOOM with a PEFT DoRA adapter matches PEFT: logits, loss, gradients, merge, files",
                   "[golden][bloom][dora]", float, double) {
    pa::testing::check_adapter_parity<pa::Bloom<pa::bloom::SizeTiny, pa::DoRA<4, 8, pa::site::Qkv>>, TestType>("bloom",
                                                                                                             "dora");
}

TEMPLATE_TEST_CASE("BLOOM with a PEFT IA3 adapter matches PEFT: logits, loss, gradients, merge, files",
                   "[golden][bloom][ia3]", float, double) {
    pa::testing::check_adapter_parity<pa::Bloom<pa::bloom::SizeTiny, pa::IA3<pa::site::Qkv, pa::site::MlpDown>>,
                                      TestType>("bloom", "ia3");
}
