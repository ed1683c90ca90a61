// What the CPU benchmarks share: a timer, the paper's LoRA adapters per family, the command line and the threads.
#pragma once

#include <polyalpaca/adapters/lora.hpp>
#include <polyalpaca/adapters/sites.hpp>
#include <polyalpaca/backend/cpu/context.hpp>

#include <boost/program_options.hpp>

#include <chrono>
#include <functional>
#include <iostream>

namespace polyalpaca::bench {

/// Wall seconds of one call of f.
inline double seconds(std::function<void()> const& f) {
    auto const t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// LoRA r8, alpha 16 (the paper's) on the fused query_key_value, or on q, k and v where they are separate.
using QkvLora = LoRA<8, 16, site::Qkv>;
using QkvSplitLora = LoRA<8, 16, site::Query, site::Key, site::Value>;

/// Parses argv against desc; false when --help was asked for (and printed).
inline bool parse_command_line(int argc, char** argv, boost::program_options::options_description const& desc) {
    namespace po = boost::program_options;
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return false;
    }
    po::notify(vm);
    return true;
}

/// `threads` > 0: OpenMP, Eigen and OpenBLAS all run that many (a BLAS left at its default beside one-thread Eigen
/// waits for a core on a busy machine).
inline void use_threads(int threads) {
    if (threads > 0) cpu::set_cpu_threads(threads);
}

}  // namespace polyalpaca::bench
