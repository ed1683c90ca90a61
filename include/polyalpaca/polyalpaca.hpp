/// @file polyalpaca.hpp
/// @brief Umbrella header: the CPU backend, the model families, adapters, the optimizer and generation.
#pragma once

#include "polyalpaca/backend/cpu_eigen.hpp"  // defines: CpuEigen and the cpu:: ops
#include "polyalpaca/core/batch.hpp"         // defines: TokenBatch, ignore_index
#include "polyalpaca/generate/generate.hpp"  // defines: generate, GenerationConfig (KV-cached decoding)
#include "polyalpaca/models/bloom.hpp"       // defines: Bloom<Size, Adapter>, bloom::Size560m ...
#include "polyalpaca/models/causal_lm.hpp"   // defines: CausalLm<Model, Backend, T>
#include "polyalpaca/models/gpt_neox.hpp"    // defines: GptNeoX<Size, Adapter>, gpt_neox::Size70m ...
#include "polyalpaca/models/llama.hpp"       // defines: Llama<Size, Adapter>, llama::Size7b ...
#include "polyalpaca/optim/adamw.hpp"        // defines: AdamW
#include "polyalpaca/optim/clip.hpp"         // defines: clip_grad_norm
#include "polyalpaca/optim/schedule.hpp"     // defines: Schedule
#include "polyalpaca/train/step.hpp"         // defines: train_step
#include "polyalpaca/tokenizer/tokenizer.hpp"  // defines: Tokenizer (HF tokenizer.json, SentencePiece)
