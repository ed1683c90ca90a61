#!/usr/bin/env python3
"""Reads the GGUF files polyalpaca writes with gguf-py, llama.cpp's own Python package, and checks them against it:
every file parses; names, types and shapes agree across types; the architecture's metadata is there; and every F16, BF16 and Q8_0 tensor holds, byte for byte, what gguf-py's quantize() makes of the same
tensor of the F32 file. Run by hand, never in CI.

Pinned versions (checked at runtime): gguf==0.19.0, numpy==2.4.6

    /opt/pa-venv/bin/pip install gguf==0.19.0 numpy==2.4.6
    POLYALPACA_GGUF_EXPORT_DIR=/tmp/gguf_export build/tests/unit_tests_0 "[writer]"
    /opt/pa-venv/bin/python tools/check_gguf_export.py /tmp/gguf_export
"""

import importlib.metadata
import pathlib
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import quantize

PINNED = {"gguf": "0.19.0", "numpy": "2.4.6"}
TYPES = {"F16": GGMLQuantizationType.F16, "BF16": GGMLQuantizationType.BF16, "Q8_0": GGMLQuantizationType.Q8_0}
COMMON_KEYS = ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count"]
ARCH_KEYS = {
    "llama": COMMON_KEYS + ["vocab_size", "attention.head_count_kv", "rope.dimension_count", "rope.freq_base",
                            "attention.layer_norm_rms_epsilon"],
    "bloom": COMMON_KEYS + ["attention.head_count_kv", "attention.layer_norm_epsilon"],
    "gptneox": COMMON_KEYS + ["rope.dimension_count", "use_parallel_residual", "attention.layer_norm_epsilon"],
}
PREFIXES = ("", "tied_", "bloom_", "gpt_neox_", "gpt_neox_sequential_")  # tests/unit/gguf_writer.cpp's files


def check_versions():
    for name, want in PINNED.items():
        found = importlib.metadata.version(name)
        if found != want:
            raise SystemExit(f"{name} {found} is installed but this check is pinned to {want}")


def tensors(path):
    reader = GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    keys = ["general.architecture", "general.name", "general.file_type"] + [f"{arch}.{k}" for k in ARCH_KEYS[arch]]
    missing = [k for k in keys if k not in reader.fields]
    if missing:
        raise SystemExit(f"{path}: metadata lacks {missing}")
    return {t.name: t for t in reader.tensors}


def check(directory, prefix):
    reference = tensors(directory / f"{prefix}F32.gguf")
    for t in reference.values():
        if t.tensor_type != GGMLQuantizationType.F32:
            raise SystemExit(f"{prefix}F32.gguf: {t.name} is {t.tensor_type.name}")
    rows = []
    for type_name, qtype in TYPES.items():
        path = directory / f"{prefix}{type_name}.gguf"
        found = tensors(path)
        if sorted(found) != sorted(reference):
            raise SystemExit(f"{path}: tensors {sorted(found)} differ from the F32 file's {sorted(reference)}")
        equal = 0
        for name, t in found.items():
            ref = reference[name]
            if list(t.shape) != list(ref.shape):
                raise SystemExit(f"{path}: {name} has shape {list(t.shape)}, the F32 file {list(ref.shape)}")
            values = np.asarray(ref.data, dtype=np.float32).reshape([int(d) for d in reversed(ref.shape)])
            want_type = qtype if values.ndim == 2 else GGMLQuantizationType.F32  # vectors stay F32
            if t.tensor_type != want_type:
                raise SystemExit(f"{path}: {name} is {t.tensor_type.name}, expected {want_type.name}")
            want = np.asarray(quantize(values, want_type)).tobytes()
            if np.asarray(t.data).tobytes() != want:
                raise SystemExit(f"{path}: {name} differs from gguf-py's {want_type.name} of the F32 tensor")
            equal += 1
        rows.append((path.name, len(found), equal))
    return rows


def main():
    check_versions()
    directory = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gguf_export")
    print("| file | tensors | byte-equal to gguf-py |")
    print("|---|---:|---:|")
    for prefix in PREFIXES:
        for name, count, equal in check(directory, prefix):
            print(f"| {name} | {count} | {equal} |")


if __name__ == "__main__":
    main()
