#!/usr/bin/env python3
"""Writes tests/golden/data/optim_golden.json: AdamW, clip_grad_norm_ and LR schedules computed by the real libraries.

Pinned versions (checked at runtime): torch==2.15.0, transformers==5.24.0, accelerate==1.15.0
(accelerate only because transformers.TrainingArguments requires it).

    python3 -m venv /opt/pa-venv
    /opt/pa-venv/bin/pip install torch==2.15.0 transformers==5.24.0 accelerate==1.15.0
    /opt/pa-venv/bin/python tools/make_optim_golden.py

Every input is stored next to its outputs, so tests/unit/optim_golden.cpp reads everything from the file.
"""

import json
import pathlib
import tempfile

import torch
import transformers
from transformers import TrainingArguments
from transformers.optimization import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

PINNED = {"torch": "2.15.0", "transformers": "5.24.0"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "optim_golden.json"


def check_versions():
    found = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} is installed but the golden file is pinned to {want}")
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def values(n, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=gen, dtype=torch.float64) * scale).tolist()


def adamw_case(name, n, steps, lr, betas, eps, weight_decay, seed):
    params0 = values(n, seed, 1.0)
    grads = [values(n, seed + 1 + s, 0.5) for s in range(steps)]
    p = torch.tensor(params0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                            amsgrad=False, maximize=False, foreach=False, fused=False)
    after = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        state = opt.state[p]
        after.append({"step": int(state["step"].item()), "params": p.detach().tolist(),
                      "exp_avg": state["exp_avg"].tolist(), "exp_avg_sq": state["exp_avg_sq"].tolist()})
    return {"name": name, "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": weight_decay,
            "params": params0, "grads": grads, "after": after}


def clip_case(name, grads, max_norm):
    p = torch.zeros(len(grads), dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(grads, dtype=torch.float64)
    total = torch.nn.utils.clip_grad_norm_([p], max_norm=max_norm, norm_type=2.0, foreach=False)
    return {"name": name, "max_norm": max_norm, "grads": grads, "total_norm": total.item(),
            "clipped": p.grad.tolist()}


def schedule_case(kind, make, base_lr, warmup, total):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make(opt, warmup, total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {"kind": kind, "base_lr": base_lr, "warmup_steps": warmup, "total_steps": total, "lr": lrs}


def warmup_case(ratio, total):
    with tempfile.TemporaryDirectory() as out_dir:
        args = TrainingArguments(output_dir=out_dir, warmup_steps=ratio, report_to=[])
        return {"ratio": ratio, "total_steps": total, "warmup_steps": args.get_warmup_steps(total)}


def main():
    versions = check_versions()
    golden = {
        "versions": versions,
        "adamw": [
            adamw_case("brief", 7, 5, 1e-3, (0.9, 0.95), 1e-8, 0.1, seed=1234),
            adamw_case("torch_defaults", 5, 3, 1e-3, (0.9, 0.999), 1e-8, 0.01, seed=99),
        ],
        "clip": [
            clip_case("clips", values(9, 7, 1.0), 1.0),
            clip_case("no_clip", values(9, 8, 0.1), 1.0),
            clip_case("norm_exactly_max", [0.6, 0.8], 1.0),
        ],
        "schedules": [
            schedule_case("constant", lambda o, w, t: get_constant_schedule_with_warmup(o, w), 3e-4, 10, 100),
            schedule_case("linear", get_linear_schedule_with_warmup, 3e-4, 10, 100),
            schedule_case("cosine", get_cosine_schedule_with_warmup, 3e-4, 10, 100),
        ],
        "warmup_ratio": [warmup_case(0.03, 1000), warmup_case(0.07, 100)],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
