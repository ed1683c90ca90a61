#!/usr/bin/env python3
"""Runs the GGUF files polyalpaca writes in llama.cpp itself (llama-cpp-python, which builds llama.cpp from source)
and compares llama.cpp's logits with HF transformers' and PEFT's on the golden models (tests/golden/data/models/
<model>/reference.safetensors: input_ids, logits, and lora.logits of the model with its PEFT LoRA adapter): each
model in F32, F16, BF16 and Q8_0 (io/gguf_export.hpp), and in F32 with its LoRA adapter as a GGUF adapter
(io/gguf_adapter.hpp, llama.cpp's lora_path); and stories260K written with its own tokenizer, decoded greedily
against the fixture's expected tokens. Run by hand, never in CI.

The golden models have no tokenizer, and llama.cpp will not load a model without one: each file is copied with a
placeholder vocabulary added (tokenizer.ggml.model "llama", one token per id, through gguf-py's
copy_with_new_metadata); every tensor and every other key stays as polyalpaca wrote it. Token ids go to llama.cpp
as they are, so the placeholder is never used.

Pinned versions (checked at runtime): llama-cpp-python==0.3.36, numpy==2.4.6, safetensors==0.8.0

    CMAKE_ARGS="-DGGML_NATIVE=ON" /opt/pa-venv/bin/pip install llama-cpp-python==0.3.36 --no-binary llama-cpp-python
    /opt/pa-venv/bin/pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llama-cpp-sdist
    tar xzf /tmp/llama-cpp-sdist/llama_cpp_python-0.3.36.tar.gz -C /tmp/llama-cpp-sdist   # for its gguf-py
    POLYALPACA_GGUF_EXPORT_DIR=/tmp/gguf_export build/tests/unit_tests_0 "[writer]"
    POLYALPACA_GGUF_EXPORT_DIR=/tmp/gguf_export build/tests/fixtures_tests_0 "[gguf]"   # stories260K_F32.gguf
    /opt/pa-venv/bin/python tools/check_llama_cpp.py /tmp/gguf_export \\
        /tmp/llama-cpp-sdist/llama_cpp_python-0.3.36/vendor/llama.cpp
"""

import importlib.metadata
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

PINNED = {"llama_cpp_python": "0.3.36", "numpy": "2.4.6", "safetensors": "0.8.0"}
REPO = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests/golden/data/models"
EXPORT = REPO / "build/examples/polyalpaca_export"
# golden model -> the prefix of its files in the export directory (tests/unit/gguf_writer.cpp)
MODELS = {"llama": "", "llama_tied": "tied_", "bloom": "bloom_", "gpt_neox": "gpt_neox_",
          "gpt_neox_sequential": "gpt_neox_sequential_"}
TYPES = ["F32", "F16", "BF16", "Q8_0"]


def check_versions():
    for name, want in PINNED.items():
        found = importlib.metadata.version(name)
        if found != want:
            raise SystemExit(f"{name} {found} is installed but this check is pinned to {want}")


def with_placeholder_vocabulary(path, out):
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    vocab = int(embd.shape[1])
    array, string, f32, i32, u32 = (gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING,
                                    gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.INT32, gguf.GGUFValueType.UINT32)
    new = {
        "tokenizer.ggml.model": MetadataDetails(string, "llama"),
        "tokenizer.ggml.tokens": MetadataDetails(array, [f"<t{i}>" for i in range(vocab)], sub_type=string),
        "tokenizer.ggml.scores": MetadataDetails(array, [0.0] * vocab, sub_type=f32),
        "tokenizer.ggml.token_type": MetadataDetails(array, [1] * vocab, sub_type=i32),
        "tokenizer.ggml.bos_token_id": MetadataDetails(u32, 1),
        "tokenizer.ggml.eos_token_id": MetadataDetails(u32, 2),
    }
    writer = gguf.GGUFWriter(out, arch=arch, endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, new, [])


def llama_cpp_logits(model_path, ids, lora_path=None, one_token_at_a_time=False):
    from llama_cpp import Llama
    kwargs = {"lora_path": str(lora_path)} if lora_path else {}
    batch = 1 if one_token_at_a_time else 64
    f32 = 0  # GGML_TYPE_F32: an F32 KV cache (llama.cpp's default is F16)
    llm = Llama(model_path=str(model_path), n_ctx=64, n_batch=batch, n_ubatch=batch, logits_all=True, n_threads=2,
                verbose=False, seed=0, type_k=f32, type_v=f32, **kwargs)
    rows = []
    for row in ids:
        llm.reset()
        llm.eval([int(t) for t in row])
        rows.append(np.array(llm.scores[:len(row)], dtype=np.float32))
    llm.close()
    return np.stack(rows)


def compare(ours, reference):
    scale = float(np.abs(reference).max())
    relative = float(np.abs(ours - reference).max()) / scale
    same_argmax = float((ours.argmax(-1) == reference.argmax(-1)).mean())
    return relative, same_argmax


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    export_dir, llama_cpp = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).resolve()
    check_versions()
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    from safetensors.numpy import load_file
    print(f"llama-cpp-python {PINNED['llama_cpp_python']} (llama.cpp built from its sdist), CPU\n")
    print("| model | file | max relative logit difference to HF | same argmax |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        for model, prefix in MODELS.items():
            reference = load_file(str(GOLDEN / model / "reference.safetensors"))
            ids = reference["input_ids"]
            for type_name in TYPES:
                runnable = scratch / f"{model}_{type_name}.gguf"
                with_placeholder_vocabulary(export_dir / f"{prefix}{type_name}.gguf", runnable)
                # llama.cpp's batched Q8_0 product crashes at these tiny widths on a CPU with AMX (the converter's
                # own Q8_0 files alike): Q8_0 files are evaluated one token at a time.
                logits = llama_cpp_logits(runnable, ids, one_token_at_a_time=type_name == "Q8_0")
                relative, same = compare(logits, reference["logits"])
                print(f"| {model} | {type_name} | {relative:.2e} | {same:.0%} |")
            adapter = scratch / f"{model}-lora.gguf"
            subprocess.run([str(EXPORT), "--model", str(GOLDEN / model), "--adapter", str(GOLDEN / f"{model}-lora"),
                            "--out", str(adapter)], check=True, capture_output=True)
            relative, same = compare(llama_cpp_logits(scratch / f"{model}_F32.gguf", ids, adapter),
                                     reference["lora.logits"])
            print(f"| {model} + LoRA | F32 + adapter (against PEFT) | {relative:.2e} | {same:.0%} |")
    check_stories(export_dir)


def check_stories(export_dir):
    """stories260K written with its tokenizer (tests/fixtures/gguf_stories.cpp): llama.cpp loads it as it is and
    decodes greedily from BOS, stopping at BOS as llama2.c's run.c does; the tokens must be the fixture's
    expected_greedy.json, and llama.cpp's tokenizer must encode a text as the file's vocabulary says."""
    import json
    from llama_cpp import Llama
    fixture = REPO.parent / "shared/fixtures/stories260K/expected_greedy.json"
    path = export_dir / "stories260K_F32.gguf"
    if not fixture.exists() or not path.exists():
        print(f"\nstories260K: skipped ({fixture} or {path} is missing)")
        return
    expected = json.loads(fixture.read_text())["greedy_tokens_including_bos"]
    llm = Llama(model_path=str(path), n_ctx=len(expected) + 1, n_batch=1, n_ubatch=1, logits_all=True, n_threads=2,
                verbose=False, type_k=0, type_v=0)
    tokens = [1]
    llm.eval(tokens)
    while len(tokens) < len(expected):
        following = int(np.argmax(llm.scores[len(tokens) - 1]))
        if following == 1:
            break
        tokens.append(following)
        llm.eval([following])
    same = sum(a == b for a, b in zip(tokens, expected))
    text = "Once upon a time, there was a little girl named Lily."
    print(f"\nstories260K_F32.gguf (its own tokenizer) in llama.cpp: greedy from BOS {same} of {len(expected)} tokens "
          f"as expected_greedy.json ({'equal' if tokens == expected else 'DIFFERENT'}); "
          f"'{text}' -> {llm.tokenize(text.encode())}")
    llm.close()


if __name__ == "__main__":
    main()
