/// @file tests/consumer_trainer/check_adapter.cpp
/// @brief check_adapter CONFIG_JSON ADAPTER_DIR: the generated model type matches the config.json it came from, and
///        the adapter the generated trainer wrote loads back into it, trained (its lora_B weights are not all zero,
///        as PEFT initialises them).
#include <cstdio>

#include <polyalpaca/io/hf_config.hpp>
#include <polyalpaca/io/peft.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include "consumer_trainer_model.hpp"

namespace pa = polyalpaca;
using Model = pa::Llama<consumer_trainer_size, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;

int main(int argc, char** argv) try {
    if (argc != 3) {
        std::fprintf(stderr, "usage: consumer_check_adapter CONFIG_JSON ADAPTER_DIR\n");
        return 2;
    }
    pa::io::check_config<Model>(std::filesystem::path(argv[1]));
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 1});
    pa::io::load_peft_adapter(ctx, net, argv[2]);
    int trained = 0, lora_b = 0;
    for (auto const* p : net.parameters().parameters()) {
        if (!p->name.ends_with(".lora_B.weight")) continue;
        ++lora_b;
        auto const values = pa::io::download<pa::CpuEigen>(ctx, *p);
        for (float v : values)
            if (v != 0.0f) {
                ++trained;
                break;
            }
    }
    if (lora_b == 0 || trained != lora_b) {
        std::printf("consumer: FAIL: %d of %d lora_B weights were trained\n", trained, lora_b);
        return 1;
    }
    std::printf("consumer: OK (the adapter loads into %s: %d trained lora_B weights)\n", Model::family, lora_b);
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "consumer_check_adapter: %s\n", e.what());
    return 1;
}
