#!/usr/bin/env python3
"""Writes tests/golden/data/study/{length_grouped,flops}.json for the study mechanics (data/batching*, train/flops).

length_grouped.json: transformers' LengthGroupedSampler (group_by_length), unpatched, with a seeded torch.Generator.
  The permutation torch.randperm draws with that generator is stored too, so the test feeds the same permutation to
  polyalpaca's length_grouped_from_permutation and must get HF's order exactly (our own runs use our own Rng).
flops.json: torch.utils.flop_counter.FlopCounterMode over one forward + backward of tiny HF models (eager attention)
  with the shapes of polyalpaca's SizeTiny presets, full-parameter and with PEFT LoRA.

Pinned versions (checked at runtime): torch==2.15.0, transformers==5.24.0, peft==0.21.2.

    /opt/pa-venv/bin/python tools/make_study_golden.py
"""

import json
import pathlib
import random

import peft
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers.trainer_pt_utils import LengthGroupedSampler

PINNED = {"torch": "2.15.0", "transformers": "5.24.0", "peft": "0.21.2"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "study"


def check_versions():
    found = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
             "peft": peft.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} is installed but the golden files are pinned to {want}")
    return found


def length_case(name, n, batch_size, seed, low, high, mega_batch_mult=None):
    rnd = random.Random(seed)
    lengths = [rnd.randint(low, high) for _ in range(n)]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    if mega_batch_mult is None:
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator().manual_seed(seed))
        order = list(iter(sampler))
    else:
        from transformers.trainer_pt_utils import get_length_grouped_indices
        order = get_length_grouped_indices(lengths, batch_size, mega_batch_mult=mega_batch_mult,
                                           generator=torch.Generator().manual_seed(seed))
    return {"name": name, "batch_size": batch_size, "mega_batch_mult": mega_batch_mult, "lengths": lengths,
            "permutation": perm, "order": order}


def tiny_config(family, tied=False):
    common = dict(vocab_size=96, hidden_size=32, num_attention_heads=4)
    if family == "bloom":
        return transformers.BloomConfig(vocab_size=96, hidden_size=32, n_layer=2, n_head=4, hidden_dropout=0.0,
                                        attention_dropout=0.0)
    if family == "gpt_neox":
        return transformers.GPTNeoXConfig(**common, num_hidden_layers=2, intermediate_size=128, rotary_pct=0.5,
                                          hidden_dropout=0.0, attention_dropout=0.0, tie_word_embeddings=False,
                                          use_parallel_residual=True)
    return transformers.LlamaConfig(**common, num_hidden_layers=2, num_key_value_heads=2, intermediate_size=64,
                                    tie_word_embeddings=tied)


def flops_case(name, family, lora_targets, batch, seq, tied=False):
    torch.manual_seed(0)
    config = tiny_config(family, tied)
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    if lora_targets:
        model = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                           target_modules=lora_targets, task_type="CAUSAL_LM"))
    model.train()
    ids = torch.randint(0, 96, (batch, seq), generator=torch.Generator().manual_seed(1))
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"name": name, "family": family, "lora_targets": lora_targets, "tied": tied, "batch": batch, "seq": seq,
            "trainable_parameters": trainable, "flops": int(counter.get_total_flops())}


def main():
    versions = check_versions()
    OUT.mkdir(parents=True, exist_ok=True)
    cases = [
        length_case("one", 1, 4, 1, 1, 10),
        length_case("tiny_ties", 7, 2, 2, 1, 3),
        length_case("mult1_small", 30, 4, 3, 1, 100),
        length_case("default_mult", 1000, 8, 4, 1, 512),
        length_case("many_ties", 2000, 16, 5, 5, 12),
        length_case("paper_global_128", 6000, 128, 6, 20, 512),
        length_case("explicit_mult3", 500, 10, 7, 1, 64, mega_batch_mult=3),
    ]
    (OUT / "length_grouped.json").write_text(json.dumps({"versions": versions, "cases": cases}) + "\n")

    flops = [
        flops_case("bloom_full", "bloom", None, 2, 16),
        flops_case("bloom_lora_qkv", "bloom", ["query_key_value"], 2, 16),
        flops_case("bloom_lora_all", "bloom", ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"], 2, 16),
        flops_case("gpt_neox_full", "gpt_neox", None, 2, 16),
        flops_case("gpt_neox_lora_qkv", "gpt_neox", ["query_key_value"], 2, 16),
        flops_case("llama_full", "llama", None, 2, 16),
        flops_case("llama_lora_qkv", "llama", ["q_proj", "k_proj", "v_proj"], 2, 16),
        flops_case("llama_tied_full", "llama", None, 3, 11, tied=True),
    ]
    (OUT / "flops.json").write_text(json.dumps({"versions": versions, "cases": flops}, indent=1) + "\n")


if __name__ == "__main__":
    main()
