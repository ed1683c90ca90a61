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

TEMPLATE_TEST_CASE("GPT-NeoX with a PEFT DoRA adapter matches PEFT: logits, loss, gradients, merge, files",
                   "[golden][gpt_neox][dora]", float, double) {
    pa::testing::check_adapter_parity<pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::DoRA<4, 8, pa::site::Qkv>>, TestType>(
        "gpt_neox", "dora");
}

TEMPLATE_TEST_CASE("GPT-NeoX with a PEFT IA3 adapter matches PEFT: logits, loss, gradients, merge, files",
                   "[golden][gpt_neox][ia3]", float, double) {
    pa::testing::check_adapter_parity<pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::IA3<pa::site::Qkv, pa::site::MlpDown>>,
                                      TestType>("gpt_neox", "ia3");
}

// use_parallel_residual false (h = x + attention(ln1(x)), then h + mlp(ln2(h))) and an MLP 3 x hidden wide.
using NeoxSequential = pa::GptNeoX<pa::gpt_neox::SizeTinySequential>;

TEMPLATE_TEST_CASE("GPT-NeoX with a sequential residual and its own MLP width matches HF transformers",
                   "[golden][gpt_neox][sequential]", float, double) {
    pa::testing::check_base_parity<NeoxSequential, TestType>("gpt_neox_sequential");
}

TEMPLATE_TEST_CASE("GPT-NeoX with a sequential residual and a PEFT LoRA adapter matches PEFT",
                   "[golden][gpt_neox][sequential][lora]", float, double) {
    pa::testing::check_lora_parity<pa::GptNeoX<pa::gpt_neox::SizeTinySequential, pa::LoRA<4, 8, pa::site::Qkv>>,
                                   TestType>("gpt_neox_sequential", 1);
}
