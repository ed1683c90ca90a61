#!/usr/bin/env python3
"""Writes tests/golden/data/safetensors/: tiny files made by the real safetensors library, and what they hold.

Pinned versions (checked at runtime): safetensors==0.8.0, torch==2.15.0

    /opt/pa-venv/bin/pip install torch==2.15.0 safetensors==0.8.0
    /opt/pa-venv/bin/python tools/make_safetensors_golden.py

Files:
  mixed.safetensors        F32 / F16 / BF16 / F64 / I64 tensors, a scalar, a zero-size tensor, metadata
  writer_case.safetensors  what safetensors writes for the inputs in expected.json "writer_case" (byte-exact target)
  sharded/                 model.safetensors.index.json + two shards, in transformers' sharded layout
  expected.json            every tensor's dtype, shape and values as torch reads them (float32 after conversion),
                           the writer inputs, and torch's float32 -> float16 / bfloat16 conversions of edge cases
"""

import json
import pathlib
import struct

import safetensors
import torch
from safetensors.torch import save_file

PINNED = {"safetensors": "0.8.0", "torch": "2.15.0"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "safetensors"


def check_versions():
    found = {"safetensors": safetensors.__version__, "torch": torch.__version__.split("+")[0]}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} found, {want} pinned")


def describe(tensors):
    out = {}
    for name, t in tensors.items():
        entry = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        # float16 / bfloat16 as the float32 torch widens them to; float64 and integers as they are
        widened = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
        entry["values"] = widened.reshape(-1).tolist()
        out[name] = entry
    return out


def edge_floats():
    """float32 values that stress rounding: halfway cases, subnormals, overflow, signed zero, inf."""
    bits = [0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x00000001, 0x33000000,
            0x33000001, 0x337FFFFF, 0x33800000, 0x387FC000, 0x387FE000, 0x38800000, 0x3F801000, 0x3F803000,
            0x3F802000, 0x3F800FFF, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x47800000, 0x3F808000, 0x3F818000,
            0x3F817FFF, 0x7F7FFFFF, 0x7F7F8000, 0x00800000, 0x80000001, 0x3DCCCCCD, 0x40490FDB, 0xC2F6E979]
    g = torch.Generator().manual_seed(7)
    randoms = torch.randn(64, generator=g) * torch.logspace(-9, 6, 64)
    bits += [struct.unpack("<I", struct.pack("<f", float(x)))[0] for x in randoms]
    f32 = torch.tensor([struct.unpack("<f", struct.pack("<I", b))[0] for b in bits], dtype=torch.float32)
    f16 = f32.to(torch.float16).view(torch.int16).tolist()
    bf16 = f32.to(torch.bfloat16).view(torch.int16).tolist()
    return [{"f32": b, "f16": h & 0xFFFF, "bf16": v & 0xFFFF} for b, h, v in zip(bits, f16, bf16)]


def main():
    check_versions()
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    mixed = {
        "model.embed.weight": torch.randn(4, 3, generator=g),
        "model.norm.weight": (torch.randn(5, generator=g) * 3).to(torch.float16),
        "model.proj.weight": torch.randn(2, 3, generator=g).to(torch.bfloat16),
        "model.double": torch.randn(3, generator=g, dtype=torch.float64),
        "model.ids": torch.tensor([3, -7, 2**40], dtype=torch.int64),
        "scalar": torch.tensor(0.1),
        "empty": torch.zeros(0, 3),
    }
    save_file(mixed, OUT / "mixed.safetensors", metadata={"format": "pt", "note": "polyalpaca golden"})

    writer_inputs = {
        "b.f32": ("F32", [2, 3], [0.1, -2.5, 3.0e-8, 65504.0, 1.0e10, -0.0]),
        "a.f16": ("F16", [3, 2], [0.1, -2.5, 3.0e-8, 65519.0, 65520.0, 1.00048828125]),
        "c.bf16": ("BF16", [6], [0.1, -2.5, 3.0e-8, 1.00390625, 1.01171875, 3.4e38]),
        "d.empty": ("F16", [0, 4], []),
    }
    torch_dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    writer_tensors = {
        name: torch.tensor(values, dtype=torch.float32).reshape(shape).to(torch_dtype[dtype])
        for name, (dtype, shape, values) in writer_inputs.items()
    }
    save_file(writer_tensors, OUT / "writer_case.safetensors", metadata={"format": "pt"})

    sharded = OUT / "sharded"
    sharded.mkdir(exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {"layer.0.weight": torch.randn(2, 2, generator=g),
                                              "layer.0.bias": torch.randn(2, generator=g)},
        "model-00002-of-00002.safetensors": {"layer.1.weight": torch.randn(2, 2, generator=g).to(torch.float16)},
    }
    weight_map, total, everything = {}, 0, {}
    for file, tensors in shards.items():
        save_file(tensors, sharded / file, metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = file
            total += t.numel() * t.element_size()
            everything[name] = t
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")

    expected = {
        "versions": PINNED,
        "mixed": {"metadata": {"format": "pt", "note": "polyalpaca golden"}, "tensors": describe(mixed)},
        "writer_case": {
            "metadata": {"format": "pt"},
            "tensors": [{"name": n, "dtype": d, "shape": s, "values": v} for n, (d, s, v) in writer_inputs.items()],
        },
        "sharded": {"shard_count": len(shards), "tensors": describe(everything)},
        "conversions": edge_floats(),
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
