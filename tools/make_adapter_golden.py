#!/usr/bin/env python3
"""Writes PEFT DoRA and IA3 adapters for the tiny checkpoints of tests/golden/data/models/ and what PEFT computes
with them.

Pinned versions (checked at runtime): torch==2.15.0, transformers==5.24.0, peft==0.21.2, safetensors==0.8.0.

    /opt/pa-venv/bin/pip install torch==2.15.0 transformers==5.24.0 accelerate==1.15.0 peft==0.21.2 safetensors==0.8.0
    /opt/pa-venv/bin/python tools/make_golden.py           # the base checkpoints this script reads
    /opt/pa-venv/bin/python tools/make_adapter_golden.py

For each model <name> (bloom, gpt_neox, llama), on the checkpoint models/<name>/ and its batch (input_ids,
labels.masked of models/<name>/reference.safetensors):
  models/<name>-dora/   LoraConfig(r=4, lora_alpha=8, use_dora=True) on the LoRA golden's target modules, as
                        save_pretrained writes it; lora_B and the magnitude drawn afresh so nothing is trivial
  models/<name>-ia3/    IA3Config with PEFT's default target and feed-forward modules for the family; ia3_l drawn
                        around 1
  models/<name>/adapters.safetensors   float32:
    <kind>.logits (2, 7, vocab), <kind>.loss.masked (1)    the PEFT model, eval mode, every dropout 0
    <kind>.grad.<parameter>                                d loss.masked / d adapter tensor (names without PEFT's
                                                           prefix and adapter name, as polyalpaca names them)
    <kind>.merged.<weight or bias>                         merge_and_unload()'s weights of every adapted module
  where <kind> is dora or ia3. Its metadata (one key, "golden") records versions and settings.

Deterministic: rerunning gives identical files.
"""

import json
import pathlib
import shutil

import safetensors.torch
import torch
from peft import IA3Config, LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from make_golden import check_versions  # the versions the base goldens are pinned to

MODELS_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "models"

DORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
LORA_TARGETS = {"bloom": ["query_key_value"], "gpt_neox": ["query_key_value"], "llama": ["q_proj", "v_proj"]}
# PEFT's TRANSFORMERS_MODELS_TO_IA3_{TARGET,FEEDFORWARD}_MODULES_MAPPING, spelled out so a PEFT change shows here.
IA3_TARGETS = {"bloom": (["query_key_value", "mlp.dense_4h_to_h"], ["mlp.dense_4h_to_h"]),
               "gpt_neox": (["query_key_value", "dense_4h_to_h"], ["dense_4h_to_h"]),
               "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"])}


def load_base(name):
    model = AutoModelForCausalLM.from_pretrained(MODELS_DIR / name, dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def polyalpaca_name(name):
    """base_model.model.X.lora_A.default.weight -> X.lora_A.weight; X.lora_magnitude_vector.default.weight ->
    X.lora_magnitude_vector; X.ia3_l.default -> X.ia3_l: the keys PEFT saves, without base_model.model."""
    name = name.removeprefix("base_model.model.")
    name = name.replace(".lora_magnitude_vector.default.weight", ".lora_magnitude_vector")
    return name.replace(".default", "")


def reference(kind, model, ids, masked):
    out = {}
    model.eval()
    with torch.no_grad():
        out[f"{kind}.logits"] = model(input_ids=ids).logits.float().contiguous()
        out[f"{kind}.loss.masked"] = model(input_ids=ids, labels=masked).loss.reshape(1)
    model.train()
    model.zero_grad(set_to_none=True)
    model(input_ids=ids, labels=masked).loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    for name, p in trainable:
        out[f"{kind}.grad.{polyalpaca_name(name)}"] = p.grad.detach().clone()
    model.zero_grad(set_to_none=True)
    model.eval()
    return out, [polyalpaca_name(n) for n, _ in trainable]


def merged_reference(kind, model, adapted_modules):
    merged = model.merge_and_unload()
    params = dict(merged.named_parameters())
    out = {}
    for module in adapted_modules:
        for leaf in ("weight", "bias"):
            if f"{module}.{leaf}" in params:
                out[f"{kind}.merged.{module}.{leaf}"] = params[f"{module}.{leaf}"].detach().clone()
    return out


def save_adapter(model, adapter_dir):
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    model.save_pretrained(adapter_dir, safe_serialization=True)
    (adapter_dir / "README.md").unlink(missing_ok=True)  # PEFT's empty model card template
    config_file = adapter_dir / "adapter_config.json"  # PEFT records the path it loaded the base from: not ours
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = None
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True))
    saved = safetensors.torch.load_file(str(adapter_dir / "adapter_model.safetensors"))
    return sorted(k.removeprefix("base_model.model.") for k in saved)


def dora(name, ids, masked, seed):
    config = LoraConfig(r=DORA["r"], lora_alpha=DORA["lora_alpha"], lora_dropout=DORA["lora_dropout"],
                        target_modules=LORA_TARGETS[name], bias="none", task_type="CAUSAL_LM", use_rslora=False,
                        use_dora=True, init_lora_weights=True)
    torch.manual_seed(seed)  # lora_A: PEFT's kaiming-uniform draw
    model = get_peft_model(load_base(name), config)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # B starts at zero and the magnitude at the weight's row norms: move both
        for pname, p in model.named_parameters():
            if ".lora_B." in pname:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float32))
            elif ".lora_magnitude_vector." in pname:
                p.mul_(1.0 + 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float32))
    saved = save_adapter(model, MODELS_DIR / f"{name}-dora")
    out, trainable = reference("dora", model, ids, masked)
    if sorted(trainable) != saved:
        raise SystemExit(f"{name} DoRA: saved {saved} but trains {sorted(trainable)}")
    modules = sorted({n.rsplit(".lora_", 1)[0] for n in trainable})
    out.update(merged_reference("dora", model, modules))
    return out, saved


def ia3(name, ids, masked, seed):
    targets, feedforward = IA3_TARGETS[name]
    config = IA3Config(target_modules=targets, feedforward_modules=feedforward, task_type="CAUSAL_LM",
                       init_ia3_weights=True)
    model = get_peft_model(load_base(name), config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # ia3_l starts at one: a model whose scales are all one gives no information
        for pname, p in model.named_parameters():
            if ".ia3_l." in pname:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float32))
    saved = save_adapter(model, MODELS_DIR / f"{name}-ia3")
    out, trainable = reference("ia3", model, ids, masked)
    if sorted(trainable) != saved:
        raise SystemExit(f"{name} IA3: saved {saved} but trains {sorted(trainable)}")
    modules = sorted({n.removesuffix(".ia3_l") for n in trainable})
    out.update(merged_reference("ia3", model, modules))
    return out, saved


def make(name, versions):
    base = safetensors.torch.load_file(str(MODELS_DIR / name / "reference.safetensors"))
    ids, masked = base["input_ids"], base["labels.masked"]
    seed = 5000 + sorted(LORA_TARGETS).index(name) * 10
    ref, dora_saved = dora(name, ids, masked, seed)
    ia3_ref, ia3_saved = ia3(name, ids, masked, seed + 5)
    ref.update(ia3_ref)
    meta = {"golden": json.dumps({
        "versions": versions, "model": name, "attn_implementation": "eager",
        "dora": {**DORA, "target_modules": LORA_TARGETS[name], "use_dora": True},
        "ia3": {"target_modules": IA3_TARGETS[name][0], "feedforward_modules": IA3_TARGETS[name][1]},
    }, sort_keys=True)}
    ref = {k: v.float().contiguous() for k, v in ref.items()}
    safetensors.torch.save_file(ref, str(MODELS_DIR / name / "adapters.safetensors"), metadata=meta)
    print(f"{name}: DoRA loss {ref['dora.loss.masked'].item():.6f} ({len(dora_saved)} tensors, e.g. "
          f"{dora_saved[0]}), IA3 loss {ref['ia3.loss.masked'].item():.6f} ({len(ia3_saved)} tensors, e.g. "
          f"{ia3_saved[0]})")


def main():
    versions = check_versions()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for name in LORA_TARGETS:
        make(name, versions)
    for f in MODELS_DIR.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)


if __name__ == "__main__":
    main()
