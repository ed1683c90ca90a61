/// @file tests/golden/model_llama.cpp
/// @brief LLaMA, untied and tied head (tiny random checkpoints, grouped-query attention) against HF transformers
///        and PEFT: logits, losses, gradients, AdamW, LoRA on q_proj and v_proj.
#include "model_parity.hpp"

namespace pa = polyalpaca;

using LlamaLora = pa::LoRA<4, 8, pa::site::Query, pa::site::Value>;
using LlamaTiny = pa::Llama<pa::llama::SizeTiny>;
using LlamaTinyTied = pa::Llama<pa::llama::SizeTinyTied>;

TEMPLATE_TEST_CASE("LLaMA matches HF transformers: logits, losses, gradients, one AdamW step", "[golden][llama]",
                   float, double) {
    pa::testing::check_base_parity<LlamaTiny, TestType>("llama");
}

TEMPLATE_TEST_CASE("LLaMA with a tied head matches HF transformers: logits, losses, gradients, one AdamW step",
                   "[golden][llama]", float, double) {
    pa::testing::check_base_parity<LlamaTinyTied, TestType>("llama_tied");
}

TEMPLATE_TEST_CASE("LLaMA with a PEFT LoRA adapter matches PEFT: logits, loss, adapter gradients",
                   "[golden][llama][lora]", float, double) {
    pa::testing::check_lora_parity<pa::Llama<pa::llama::SizeTiny, LlamaLora>, TestType>("llama", 2);
}

TEMPLATE_TEST_CASE("LLaMA with a tied head and a PEFT LoRA adapter matches PEFT", "[golden][llama][lora]", float,
                   double) {
    pa::testing::check_lora_parity<pa::Llama<pa::llama::SizeTinyTied, LlamaLora>, TestType>("llama_tied", 2);
}

TEMPLATE_TEST_CASE("LLaMA with a PEFT DoRA adapter matches PEFT: logits, loss, gradients, merge, files",
                   "[golden][llama][dora]", float, double) {
    pa::testing::check_adapter_parity<pa::Llama<pa::llama::SizeTiny, pa::DoRA<4, 8, pa::site::Query, pa::site::Value>>,
                                      TestType>("llama", "dora");
}

TEMPLATE_TEST_CASE("LLaMA with a PEFT IA3 adapter matches PEFT: logits, loss, gradients, merge, files",
                   "[golden][llama][ia3]", float, double) {
    pa::testing::check_adapter_parity<
        pa::Llama<pa::llama::SizeTiny, pa::IA3<pa::site::Key, pa::site::Value, pa::site::MlpDown>>, TestType>("llama",
                                                                                                             "ia3");
}
