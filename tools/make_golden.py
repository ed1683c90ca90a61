#!/usr/bin/env python3
"""Writes tests/golden/data/models/: tiny random BLOOM, GPT-NeoX and LLaMA checkpoints and what HF computes with them.

Pinned versions (checked at runtime): torch==2.15.0, transformers==5.24.0, peft==0.21.2, safetensors==0.8.0.

    /opt/pa-venv/bin/pip install torch==2.15.0 transformers==5.24.0 accelerate==1.15.0 peft==0.21.2 safetensors==0.8.0
    /opt/pa-venv/bin/python tools/make_golden.py

For each model <name> (bloom, gpt_neox, gpt_neox_sequential, llama, llama_tied), whose config equals polyalpaca's
SizeTiny preset (gpt_neox_sequential: GPT-NeoX with use_parallel_residual false and an MLP 3 x hidden wide, as
polyalpaca's gpt_neox::SizeTinySequential):
  models/<name>/config.json, generation_config.json, model.safetensors   the float32 checkpoint, as save_pretrained
      writes it
  models/<name>-lora/adapter_config.json, adapter_model.safetensors   a PEFT LoRA adapter, as save_pretrained writes it
  models/<name>/reference.safetensors   inputs and HF's outputs (float32 unless noted):
    input_ids (2, 7) int64; labels.masked (2, 7) int64 (prompt positions -100); labels.unmasked (= input_ids)
    logits (2, 7, vocab)                   eval mode
    loss.masked, loss.unmasked (1)         HF's shifted mean cross-entropy (position t predicts label t + 1)
    grad.<parameter name>                  d loss.masked / d weight, model.train() with every dropout 0
    adamw.<parameter name>                 the weight after one torch.optim.AdamW step on those gradients
    lora.logits, lora.loss.masked          the PEFT model (adapter on the base model), eval mode
    lora.grad.<module>.lora_{A,B}.weight   d lora.loss.masked / d adapter weight (module names without PEFT prefixes)
    generate.prompt.<i> (1, P_i) int64     two prompts
    generate.greedy.<i>, generate.beam4.<i> (1, P_i + 12) int64   HF generate: greedy; 4 beams (no sampling)
    generate.greedy_logits.<i> (12, vocab) the raw logits of each greedy step
    generate.beam4_score.<i> (1)           HF's sequences_scores of the beam result
  Its metadata (one key, "golden", holding JSON) records the versions and the settings above.

Everything is deterministic (fixed seeds, one thread, deterministic algorithms); rerunning gives identical files.
Each models/<name>/ is written afresh: run tools/make_adapter_golden.py after it (its adapters.safetensors lives
there).
"""

import json
import pathlib
import shutil

import peft
import safetensors
import safetensors.torch
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import (
    BloomConfig,
    BloomForCausalLM,
    GenerationConfig,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

PINNED = {"torch": "2.15.0", "transformers": "5.24.0", "peft": "0.21.2", "safetensors": "0.8.0"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "models"

BATCH, SEQ = 2, 7
PROMPT_LENGTHS = (3, 4)  # prompt positions masked with -100 in labels.masked, per row
ADAMW = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}
LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
MAX_NEW_TOKENS = 12
NUM_BEAMS = 4
GENERATION_PROMPTS = ([5, 17, 42, 8], [60, 3, 29, 71, 12, 90])


def check_versions():
    found = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
             "peft": peft.__version__, "safetensors": safetensors.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} is installed but the golden files are pinned to {want}")
    return found


# Configs equal to include/polyalpaca/models/*.hpp SizeTiny presets. Every dropout 0; eager attention.
def bloom_config():
    return BloomConfig(vocab_size=96, hidden_size=32, n_layer=2, n_head=4, layer_norm_epsilon=1e-5,
                       hidden_dropout=0.0, attention_dropout=0.0, apply_residual_connection_post_layernorm=False,
                       pretraining_tp=1, slow_but_exact=False, tie_word_embeddings=True,
                       bos_token_id=1, eos_token_id=2, pad_token_id=3)


def gpt_neox_config(parallel_residual=True, intermediate_size=128):
    return GPTNeoXConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=intermediate_size, hidden_act="gelu", max_position_embeddings=2048,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
                         layer_norm_eps=1e-5, use_parallel_residual=parallel_residual, tie_word_embeddings=False,
                         attention_bias=True, attention_dropout=0.0, hidden_dropout=0.0,
                         bos_token_id=0, eos_token_id=2, pad_token_id=1)


def llama_config(tied):
    return LlamaConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=64, hidden_act="silu", max_position_embeddings=2048,
                       rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                       attention_bias=False, mlp_bias=False, attention_dropout=0.0, tie_word_embeddings=tied,
                       pretraining_tp=1, bos_token_id=1, eos_token_id=2, pad_token_id=0)


# Where save_pretrained's names differ from the module names (transformers 5 renames Pythia's embed_out to lm_head
# on load and back on save); reference tensors use the names in the saved checkpoint.
SAVED_NAMES = {"gpt_neox": {"lm_head.weight": "embed_out.weight"},
               "gpt_neox_sequential": {"lm_head.weight": "embed_out.weight"}}

MODELS = {
    "bloom": (BloomForCausalLM, bloom_config, ["query_key_value"]),
    "gpt_neox": (GPTNeoXForCausalLM, gpt_neox_config, ["query_key_value"]),
    "gpt_neox_sequential": (GPTNeoXForCausalLM, lambda: gpt_neox_config(False, 96), ["query_key_value"]),
    "llama": (LlamaForCausalLM, lambda: llama_config(False), ["q_proj", "v_proj"]),
    "llama_tied": (LlamaForCausalLM, lambda: llama_config(True), ["q_proj", "v_proj"]),
}


# Fixed per model, so that adding a model leaves the others' files as they were.
SEEDS = {"bloom": 1000, "gpt_neox": 1010, "llama": 1020, "llama_tied": 1030, "gpt_neox_sequential": 1040}


def randomise(model, seed):
    """Every weight drawn afresh so activations and gradients are non-trivial: matrices N(0, 0.2^2), biases
    N(0, 0.1^2), norm scales 1 + N(0, 0.1^2), norm shifts N(0, 0.1^2)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_norm = "norm" in name or name.split(".")[-2].startswith("ln_")
            if is_norm and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif p.dim() == 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)


def make_batch(vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (BATCH, SEQ), generator=gen, dtype=torch.int64)
    masked = ids.clone()
    for row, prompt in enumerate(PROMPT_LENGTHS):
        masked[row, :prompt] = -100
    return ids, masked


def lm_loss(model, ids, labels):
    return model(input_ids=ids, labels=labels).loss


def base_reference(model, params, ids, masked):
    out = {"input_ids": ids, "labels.masked": masked, "labels.unmasked": ids.clone()}
    model.eval()
    with torch.no_grad():
        out["logits"] = model(input_ids=ids).logits.float().contiguous()
        out["loss.masked"] = lm_loss(model, ids, masked).reshape(1)
        out["loss.unmasked"] = lm_loss(model, ids, ids).reshape(1)

    model.train()  # every dropout is 0, so train mode differs from eval only in what it records
    model.zero_grad(set_to_none=True)
    loss = lm_loss(model, ids, masked)
    if not torch.equal(loss.detach().reshape(1), out["loss.masked"]):
        raise SystemExit("train-mode loss differs from eval-mode loss: a dropout is not 0")
    loss.backward()
    for name, p in params.items():
        out["grad." + name] = p.grad.detach().clone()

    optimizer = torch.optim.AdamW(model.parameters(), lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"],
                                  weight_decay=ADAMW["weight_decay"], amsgrad=False, foreach=False, fused=False)
    saved = {name: p.detach().clone() for name, p in params.items()}
    optimizer.step()
    for name, p in params.items():
        out["adamw." + name] = p.detach().clone()
    with torch.no_grad():  # put the checkpoint weights back for what follows
        for name, p in params.items():
            p.copy_(saved[name])
    model.zero_grad(set_to_none=True)
    model.eval()
    return out


def generation_reference(model, config):
    model.eval()
    out = {}
    common = {"max_new_tokens": MAX_NEW_TOKENS, "min_new_tokens": MAX_NEW_TOKENS, "do_sample": False,
              "eos_token_id": None, "pad_token_id": config.pad_token_id, "bos_token_id": config.bos_token_id,
              "use_cache": True, "return_dict_in_generate": True}
    greedy = GenerationConfig(num_beams=1, output_logits=True, **common)
    beam = GenerationConfig(num_beams=NUM_BEAMS, num_return_sequences=1, length_penalty=1.0, early_stopping=False,
                            output_scores=True, **common)
    for i, prompt in enumerate(GENERATION_PROMPTS):
        ids = torch.tensor([prompt], dtype=torch.int64)
        mask = torch.ones_like(ids)
        with torch.no_grad():
            g = model.generate(input_ids=ids, attention_mask=mask, generation_config=greedy)
            b = model.generate(input_ids=ids, attention_mask=mask, generation_config=beam)
        for what, seq in (("greedy", g.sequences), ("beam4", b.sequences)):
            if seq.shape != (1, len(prompt) + MAX_NEW_TOKENS):
                raise SystemExit(f"{what} generation has shape {tuple(seq.shape)}")
        out[f"generate.prompt.{i}"] = ids
        out[f"generate.greedy.{i}"] = g.sequences.contiguous()
        out[f"generate.greedy_logits.{i}"] = torch.cat(g.logits, dim=0).float().contiguous()
        out[f"generate.beam4.{i}"] = b.sequences.contiguous()
        out[f"generate.beam4_score.{i}"] = b.sequences_scores.float().reshape(1)
    return out


def strip_peft_name(name):
    """base_model.model.X.lora_A.default.weight -> X.lora_A.weight (polyalpaca's parameter name)."""
    name = name.removeprefix("base_model.model.")
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def lora_reference(model, targets, ids, masked, seed, adapter_dir):
    config = LoraConfig(r=LORA["r"], lora_alpha=LORA["lora_alpha"], lora_dropout=LORA["lora_dropout"],
                        target_modules=targets, bias="none", task_type="CAUSAL_LM", use_rslora=False,
                        init_lora_weights=True)
    torch.manual_seed(seed)  # lora_A: PEFT's kaiming-uniform draw
    lora = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # lora_B starts at zero in PEFT; make it non-zero so every gradient is non-trivial
        for name, p in lora.named_parameters():
            if ".lora_B." in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float32))
    lora.save_pretrained(adapter_dir, safe_serialization=True)
    (adapter_dir / "README.md").unlink(missing_ok=True)  # PEFT's empty model card template

    out = {}
    lora.eval()
    with torch.no_grad():
        out["lora.logits"] = lora(input_ids=ids).logits.float().contiguous()
        out["lora.loss.masked"] = lora(input_ids=ids, labels=masked).loss.reshape(1)
    lora.train()
    lora.zero_grad(set_to_none=True)
    lora(input_ids=ids, labels=masked).loss.backward()
    trainable = [(n, p) for n, p in lora.named_parameters() if p.requires_grad]
    expected = 2 * len(targets) * model.config.num_hidden_layers
    if len(trainable) != expected or not all(".lora_" in n for n, _ in trainable):
        raise SystemExit(f"expected {expected} trainable LoRA tensors, got {[n for n, _ in trainable]}")
    for name, p in trainable:
        out["lora.grad." + strip_peft_name(name)] = p.grad.detach().clone()
    # Give the base model back without adapters (later steps use the checkpoint as saved).
    lora.unload()
    return out


def saved_parameters(model, name):
    """The model's parameters under the names its saved checkpoint uses."""
    renames = SAVED_NAMES.get(name, {})
    return {renames.get(n, n): p for n, p in model.named_parameters()}


def check_saved_checkpoint(model_dir, params):
    """The saved file must hold exactly the model's weights under HF names, bit for bit."""
    saved = safetensors.torch.load_file(str(model_dir / "model.safetensors"))
    for name, tensor in saved.items():
        if name not in params:
            raise SystemExit(f"{model_dir}: saved tensor {name} is not a parameter of the model")
        if not torch.equal(tensor, params[name].detach()):
            raise SystemExit(f"{model_dir}: saved tensor {name} differs from the model's")
    missing = set(params) - set(saved)
    if missing:
        raise SystemExit(f"{model_dir}: parameters missing from the saved file: {sorted(missing)}")


def make(name, versions):
    cls, make_config, targets = MODELS[name]
    seed = SEEDS[name]
    config = make_config()
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = cls(config).float()
    model.config._attn_implementation = "eager"
    randomise(model, seed)
    if config.tie_word_embeddings:
        if model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
            raise SystemExit(f"{name}: the head is not tied to the embedding")

    model_dir = OUT / name
    adapter_dir = OUT / f"{name}-lora"
    for d in (model_dir, adapter_dir):
        if d.exists():
            shutil.rmtree(d)
    model.save_pretrained(model_dir, safe_serialization=True)
    params = saved_parameters(model, name)
    check_saved_checkpoint(model_dir, params)

    ids, masked = make_batch(config.vocab_size, seed + 1)
    ref = base_reference(model, params, ids, masked)
    ref.update(generation_reference(model, config))
    ref.update(lora_reference(model, targets, ids, masked, seed + 2, adapter_dir))

    # One metadata key: safetensors keeps metadata in a hash map, so several keys would be written in random order.
    meta = {"golden": json.dumps({
        "versions": versions,
        "model": name,
        "attn_implementation": "eager",
        "prompt_lengths": PROMPT_LENGTHS,
        "adamw": ADAMW,
        "lora": {**LORA, "target_modules": targets},
        "generation": {"max_new_tokens": MAX_NEW_TOKENS, "num_beams": NUM_BEAMS, "eos_token_id": None,
                       "length_penalty": 1.0, "do_sample": False},
    }, sort_keys=True)}
    ref = {k: v.contiguous() for k, v in ref.items()}
    safetensors.torch.save_file(ref, str(model_dir / "reference.safetensors"), metadata=meta)
    logits = ref["logits"]
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, loss masked "
          f"{ref['loss.masked'].item():.6f} unmasked {ref['loss.unmasked'].item():.6f}, logits std "
          f"{logits.std().item():.3f}, LoRA loss {ref['lora.loss.masked'].item():.6f}, "
          f"greedy {ref['generate.greedy.0'].tolist()}")


def main():
    versions = check_versions()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        make(name, versions)
    for f in OUT.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
    if total > 8e6:
        raise SystemExit("golden model data exceeds 8 MB")


if __name__ == "__main__":
    main()
