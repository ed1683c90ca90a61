// polyalpaca_evaluate: evaluates a directory of trained runs on a directory of test sets and writes the report
// (eval/evaluate_program.hpp). The model is fixed at compile time, as in the trainers: BLOOM-560m by default, the
// small test BLOOM of the example trainers when POLYALPACA_EVALUATE_BLOOM_MINI is defined. Each has the LoRA
// adapter its LoRA trainers train (polyalpaca_train_bloom560m_lora_*, polyalpaca_train_bloom_mini_lora).
#include <polyalpaca/eval/evaluate_program.hpp>
#include <polyalpaca/polyalpaca.hpp>

namespace pa = polyalpaca;

#if defined(POLYALPACA_EVALUATE_BLOOM_MINI)
using Full = pa::Bloom<pa::bloom::SizeMini>;
using Lora = pa::Bloom<pa::bloom::SizeMini, pa::LoRA<8, 16, pa::site::Qkv, pa::site::MlpDown>>;
constexpr char const* program = "polyalpaca_evaluate_bloom_mini";
constexpr char const* model = "bloom-mini";
#else
using Full = pa::Bloom<pa::bloom::Size560m>;
using Lora = pa::Bloom<pa::bloom::Size560m, pa::LoRA<8, 16, pa::site::Qkv>>;
constexpr char const* program = "polyalpaca_evaluate";
constexpr char const* model = "bloom-560m";
#endif

int main(int argc, char** argv) {
    return pa::eval::run_evaluate_program<Full, Lora>(argc, argv, {.name = program, .model = model});
}
