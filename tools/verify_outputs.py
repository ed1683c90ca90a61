#!/usr/bin/env python3
"""Checks that HF libraries load what polyalpaca writes: a PEFT adapter (LoRA, DoRA or IA3; PeftModel.from_pretrained
on the base checkpoint polyalpaca saved) and a merged checkpoint (AutoModelForCausalLM.from_pretrained), each
compared with the logits polyalpaca computed with its adapted model. Run by hand, never in CI.

Pinned versions (checked at runtime): torch==2.15.0, transformers==5.24.0, peft==0.21.2, safetensors==0.8.0

    /opt/pa-venv/bin/pip install torch==2.15.0 transformers==5.24.0 accelerate==1.15.0 peft==0.21.2 safetensors==0.8.0
    # polyalpaca writes, for each tiny family, EXPORT/<family>/{base,adapter,merged,logits.safetensors}:
    POLYALPACA_EXPORT_DIR=/tmp/pa_export build/tests/unit_tests_0 "[.export]"   # unit_io_peft with POLYALPACA_TEST_UNITY=0
    /opt/pa-venv/bin/python tools/verify_outputs.py /tmp/pa_export/*
    # or one set of outputs named one by one:
    /opt/pa-venv/bin/python tools/verify_outputs.py --base B --adapter A --merged M --logits L

logits.safetensors holds "input_ids" (batch, seq; float32 holding integers) and "logits" (batch, seq, vocab),
computed by polyalpaca's adapted model in eval mode. Exits non-zero when an error exceeds --tolerance.
"""

import argparse
import pathlib
import sys

import peft
import safetensors
import safetensors.torch
import torch
import transformers
from peft import PeftModel
from transformers import AutoModelForCausalLM

PINNED = {"torch": "2.15.0", "transformers": "5.24.0", "peft": "0.21.2", "safetensors": "0.8.0"}


def check_versions():
    found = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
             "peft": peft.__version__, "safetensors": safetensors.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} found, {want} pinned")


def load_model(path):
    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise SystemExit(f"{path}: transformers reports {problems}")
    return model.eval()


def verify(base, adapter, merged, logits_file, tolerance):
    reference = safetensors.torch.load_file(logits_file)
    ids = reference["input_ids"].round().long()
    want = reference["logits"]
    errors = {}
    with torch.no_grad():
        lora = PeftModel.from_pretrained(load_model(base), adapter).eval()
        # Every adapter weight in the file must have reached the PEFT model.
        written = safetensors.torch.load_file(pathlib.Path(adapter) / "adapter_model.safetensors")
        state = {k.replace(".lora_magnitude_vector.default.weight", ".lora_magnitude_vector").replace(".default", ""): v
                 for k, v in lora.state_dict().items()}  # the keys PEFT saves (DoRA's magnitude without ".weight")
        loaded = max((written[k] - state[k]).abs().max().item() for k in written)
        if loaded != 0:
            raise SystemExit(f"{adapter}: PEFT's adapter weights differ from the file by {loaded}")
        errors["PEFT adapter on base"] = (lora(input_ids=ids).logits - want).abs().max().item()
        errors["merged checkpoint"] = (load_model(merged)(input_ids=ids).logits - want).abs().max().item()
        peft_merged = lora.merge_and_unload().state_dict()
        ours = load_model(merged).state_dict()
        errors["merged weights vs PEFT merge_and_unload"] = max(
            (ours[k] - peft_merged[k]).abs().max().item() for k in peft_merged)
    for what, error in errors.items():
        print(f"{str(logits_file):50s} {what:42s} max abs error {error:.3e}")
    return all(e <= tolerance for e in errors.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="directories holding base/, adapter/, merged/, logits.safetensors")
    parser.add_argument("--base")
    parser.add_argument("--adapter")
    parser.add_argument("--merged")
    parser.add_argument("--logits")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    check_versions()
    torch.manual_seed(0)
    sets = [(d / "base", d / "adapter", d / "merged", d / "logits.safetensors") for d in map(pathlib.Path, args.dirs)]
    if args.adapter or args.merged:
        sets.append((args.base, args.adapter, args.merged, args.logits))
    if not sets:
        parser.error("give export directories or --base/--adapter/--merged/--logits")
    ok = all([verify(*s, args.tolerance) for s in sets])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
