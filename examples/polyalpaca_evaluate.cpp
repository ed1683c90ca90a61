// polyalpaca_evaluate: evaluates a directory of trained runs on a directory of test sets and writes the report
// (eval/evaluate_program.hpp). The model is fixed at compile time, as in the trainers: BLOOM-560m by default, the
// small test BLOOM of the example trainers when POLYALPACA_EVALUATE_BLOOM_MINI is defined. Each has the LoRA
// adapter its LoRA trainers train (polyalpaca_train_bloom560m_lora_*, polyalpaca_train_bloom_mini_lora).
// Compiled by nvcc with POLYALPACA_EVALUATE_CUDA defined (polyalpaca_evaluate_cuda), the runs generate and score
// on GPU 0.
#include <polyalpaca/eval/evaluate_program.hpp>
#include <polyalpaca/polyalpaca.hpp>
#if defined(POLYALPACA_EVALUATE_CUDA)
#include <polyalpaca/backend/cuda.cuh>
#endif

namespace pa = polyalpaca;

#if defined(POLYALPACA_EVALUATE_CUDA)
using Backend = pa::Cuda;
#else
using Backend = pa::CpuEigen;
#endif

#if defined(POLYALPACA_EVALUATE_BLOOM_MINI)
using Full = pa::Bloom<pa::bloom::SizeMini>;
using Lora = pa::Bloom<pa::bloom::SizeMini, pa::LoRA<8, 16, pa::site::Qkv, pa::site::MlpDown>>;
constexpr char const* program = "polyalpaca_evaluate_bloom_mini";
constexpr char const* model = "bloom-mini";
#else
using Full = pa::Bloom<pa::bloom::Size560m>;
using Lora = pa::Bloom<pa::bloom::Size560m, pa::LoRA<8, 16, pa::site::Qkv>>;
#if defined(POLYALPACA_EVALUATE_CUDA)
constexpr char const* program = "polyalpaca_evaluate_cuda";
#else
constexpr char const* program = "polyalpaca_evaluate";
#endif
constexpr char const* model = "bloom-560m";
#endif

int main(int argc, char** argv) {
    return pa::eval::run_evaluate_program<Full, Lora, Backend>(argc, argv, {.name = program, .model = model});
}
