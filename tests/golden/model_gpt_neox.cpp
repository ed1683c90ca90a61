/// @file tests/golden/model_gpt_neox.cpp
/// @brief GPT-NeoX (tiny random checkpoint) against HF transformers and PEFT: logits, losses, gradients, AdamW, LoRA.
#include "model_parity.hpp"

namespace pa = polyalpaca;

using NeoxTiny = pa::GptNeoX<pa::gpt_neox::SizeTiny>;
using NeoxTinyLora = pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv>>;

TEMPLATE_TEST_CASE("GPT-NeoX matches HF transformers: logits, losses, gradients, one AdamW step",
                   "[golden][gpt_neox]", float, double) {
    pa::testing::check_base_parity<NeoxTiny, TestType>("gpt_neox");
}

TEMPLATE_TEST_CASE("GPT-NeoX with a PEFT LoRA adapter matches PEFT: logits, loss, adapter gradients",
                   "[golden][gpt_neox][lora]", float, double) {
    pa::testing::check_lora_parity<NeoxTinyLora, TestType>("gpt_neox", 1);
}
