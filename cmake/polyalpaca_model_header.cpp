// Run by polyalpaca_add_trainer(HF_CONFIG) at configure time (cmake/PolyalpacaTrainer.cmake):
//   polyalpaca_model_header CONFIG_JSON OUT_HEADER SIZE_NAME
// writes the header defining SIZE_NAME for CONFIG_JSON and prints "family=<template>", "sites=<LoRA sites>",
// "ia3_sites=<IA3 sites>" and "head_dim=<n>";
// exits 1 with the reason on stderr when the config names no model this project can express.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <polyalpaca/io/model_source.hpp>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: polyalpaca_model_header CONFIG_JSON OUT_HEADER SIZE_NAME\n";
        return 2;
    }
    try {
        auto const model = polyalpaca::io::model_source(polyalpaca::io::read_hf_config(argv[1]), argv[3], argv[1]);
        std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
        out << model.header();
        out.close();
        if (!out) throw polyalpaca::Error(std::string("cannot write '") + argv[2] + "'");
        std::cout << "family=" << model.family_template << "\nsites=" << model.lora_sites
                  << "\nia3_sites=" << model.ia3_sites << "\nhead_dim=" << model.head_dim << "\n";
    } catch (std::exception const& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
