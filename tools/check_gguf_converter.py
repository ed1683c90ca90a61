#!/usr/bin/env python3
"""Compares the GGUF files polyalpaca writes with what llama.cpp's own converters make of the same inputs (the golden
models and PEFT LoRA adapters of tests/golden/data/models): models (io/gguf_export.hpp) against convert_hf_to_gguf.py,
LoRA adapters (io/gguf_adapter.hpp, written here with build/examples/polyalpaca_export --adapter) against
convert_lora_to_gguf.py. The same tensor names, types and shapes, every tensor byte for byte, and the same
architecture or adapter keys. Run by hand, never in CI.

The converter is the one llama-cpp-python vendors (its sdist holds llama.cpp's source, gguf-py included), run with
torch and transformers from the project's tools environment. The golden checkpoints carry no tokenizer, so the
converter's set_vocab is skipped (the tokenizer is not compared here); and transformers 5 spells GPT-NeoX's
rotary_pct rope_parameters.partial_rotary_factor, which the converter is given as rotary_pct.

Pinned versions (checked at runtime): llama-cpp-python==0.3.36 (sdist), torch==2.15.0, transformers==5.24.0

    /opt/pa-venv/bin/pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llama-cpp-sdist
    tar xzf /tmp/llama-cpp-sdist/llama_cpp_python-0.3.36.tar.gz -C /tmp/llama-cpp-sdist
    POLYALPACA_GGUF_EXPORT_DIR=/tmp/gguf_export build/tests/unit_tests_0 "[writer]"
    /opt/pa-venv/bin/python tools/check_gguf_converter.py /tmp/gguf_export \\
        /tmp/llama-cpp-sdist/llama_cpp_python-0.3.36/vendor/llama.cpp
"""

import importlib.metadata
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

PINNED = {"torch": "2.15.0", "transformers": "5.24.0"}
SDIST = "llama_cpp_python-0.3.36"
REPO = pathlib.Path(__file__).resolve().parent.parent
# golden model -> the prefix of its files in the export directory (tests/unit/gguf_writer.cpp)
MODELS = {"llama": "", "llama_tied": "tied_", "bloom": "bloom_", "gpt_neox": "gpt_neox_",
          "gpt_neox_sequential": "gpt_neox_sequential_"}
TYPES = {"F32": "f32", "F16": "f16", "BF16": "bf16", "Q8_0": "q8_0"}
ADAPTERS = ["llama-lora", "llama_tied-lora", "bloom-lora", "gpt_neox-lora", "gpt_neox_sequential-lora"]
EXPORT = REPO / "build/examples/polyalpaca_export"

# Runs the converter with its tokenizer step skipped (the golden checkpoints have none).
RUNNER = """
import pathlib, runpy, sys
root = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(root))
sys.argv = [str(root / "convert_hf_to_gguf.py")] + sys.argv[2:]
import conversion.base as base
base.ModelBase.set_vocab = lambda self: None
prepare = base.ModelBase.prepare_metadata
def prepare_without_vocab(self, vocab_only):
    self.set_vocab = lambda: None  # the instance's, whichever class overrides it
    rope = self.hparams.get("rope_parameters") or {}
    if "partial_rotary_factor" in rope:  # transformers 5's spelling of GPT-NeoX's rotary_pct
        self.hparams.setdefault("rotary_pct", rope["partial_rotary_factor"])
    prepare(self, vocab_only)
base.ModelBase.prepare_metadata = prepare_without_vocab
runpy.run_path(str(root / "convert_hf_to_gguf.py"), run_name="__main__")
"""


def check_versions(llama_cpp):
    for name, want in PINNED.items():
        found = importlib.metadata.version(name)
        if found != want:
            raise SystemExit(f"{name} {found} is installed but this check is pinned to {want}")
    if SDIST not in str(llama_cpp):
        raise SystemExit(f"{llama_cpp} is not the vendored llama.cpp of {SDIST}")


def convert_lora(llama_cpp, adapter_dir, base_dir, out):
    run = subprocess.run([sys.executable, str(llama_cpp / "convert_lora_to_gguf.py"), "--base", str(base_dir),
                          "--outtype", "f32", "--outfile", str(out), str(adapter_dir)], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"convert_lora_to_gguf.py failed on {adapter_dir}:\n{run.stderr[-3000:]}")


def convert(llama_cpp, model_dir, outtype, out):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as runner:
        runner.write(RUNNER)
    run = subprocess.run([sys.executable, runner.name, str(llama_cpp), str(model_dir), "--outtype", outtype,
                          "--outfile", str(out)], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"the converter failed on {model_dir} ({outtype}):\n{run.stderr[-3000:]}")


def arch_fields(reader, arch):
    out = {}
    for name, field in reader.fields.items():
        if name.startswith(arch + ".") or name.startswith("adapter.") or name == "general.type":
            value = field.contents()
            out[name] = round(value, 9) if isinstance(value, float) else value
    return out


def compare(ours_path, theirs_path):
    from gguf import GGUFReader  # the vendored gguf-py, put first on sys.path in main()
    ours, theirs = GGUFReader(ours_path), GGUFReader(theirs_path)
    arch = ours.fields["general.architecture"].contents()
    if arch != theirs.fields["general.architecture"].contents():
        raise SystemExit(f"{ours_path}: architecture {arch}, the converter's "
                         f"{theirs.fields['general.architecture'].contents()}")
    mine, conv = {t.name: t for t in ours.tensors}, {t.name: t for t in theirs.tensors}
    if sorted(mine) != sorted(conv):
        raise SystemExit(f"{ours_path}: tensors differ: only ours {sorted(set(mine) - set(conv))}, "
                         f"only the converter's {sorted(set(conv) - set(mine))}")
    equal = 0
    for name, t in mine.items():
        c = conv[name]
        if t.tensor_type != c.tensor_type or list(t.shape) != list(c.shape):
            raise SystemExit(f"{ours_path}: {name} is {t.tensor_type.name} {list(t.shape)}, the converter's "
                             f"{c.tensor_type.name} {list(c.shape)}")
        if np.asarray(t.data).tobytes() != np.asarray(c.data).tobytes():
            raise SystemExit(f"{ours_path}: {name} differs from the converter's bytes")
        equal += 1
    a, b = arch_fields(ours, arch), arch_fields(theirs, arch)
    differ = [f"{k}: ours {a.get(k, '-')}, converter {b.get(k, '-')}" for k in sorted(set(a) | set(b))
              if a.get(k) != b.get(k)]
    return len(mine), equal, differ


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    export_dir, llama_cpp = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).resolve()
    check_versions(llama_cpp)
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    print(f"llama.cpp converter of {SDIST}; torch {PINNED['torch']}, transformers {PINNED['transformers']}\n")
    print("| model | type | tensors | byte-equal | architecture keys that differ |")
    print("|---|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for model, prefix in MODELS.items():
            for type_name, outtype in TYPES.items():
                theirs = pathlib.Path(scratch) / f"{model}_{type_name}.gguf"
                convert(llama_cpp, REPO / "tests/golden/data/models" / model, outtype, theirs)
                count, equal, differ = compare(export_dir / f"{prefix}{type_name}.gguf", theirs)
                print(f"| {model} | {type_name} | {count} | {equal} | {'; '.join(differ) or 'none'} |")
        for adapter in ADAPTERS:
            base = REPO / "tests/golden/data/models" / adapter.removesuffix("-lora")
            ours, theirs = pathlib.Path(scratch) / f"{adapter}_ours.gguf", pathlib.Path(scratch) / f"{adapter}.gguf"
            subprocess.run([str(EXPORT), "--model", str(base), "--adapter", str(base.parent / adapter), "--out",
                            str(ours)], check=True, capture_output=True)
            convert_lora(llama_cpp, base.parent / adapter, base, theirs)
            count, equal, differ = compare(ours, theirs)
            print(f"| {adapter} | adapter, F32 | {count} | {equal} | {'; '.join(differ) or 'none'} |")


if __name__ == "__main__":
    main()
