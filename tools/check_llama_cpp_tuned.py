#!/usr/bin/env python3
"""A model tuned by polyalpaca's own trainers, exported with polyalpaca_export and run in llama.cpp itself
(llama-cpp-python, which builds llama.cpp from source), with and without --lora. Run by hand, never in CI.

1. Trains the small BLOOM of the example trainers on the real multilingual Alpaca samples (../shared/fixtures,
   en fr ru): full-parameter, then LoRA on top of that model with --merge.
2. Exports the full model, the merged model, and the LoRA adapter (llama.cpp's --lora), each model with the run's
   byte-level BPE tokenizer ("gpt2" vocabulary, pre "bloom") and the run's Alpaca template as tokenizer.chat_template.
3. Compares the tokenizer keys (tokenizer.*) with those llama.cpp's convert_hf_to_gguf.py writes for the same model
   directory (its _set_vocab_gpt2 and gguf-py's SpecialVocab; the converter recognises a pre-tokenizer by hashing the
   ids of a check text, which knows only published tokenizers, so it is handed the name the structure gives).
4. Compares in llama.cpp:
   - tokenization: llama.cpp's ids for the texts of tests/golden/data/tokenizers/cases.json against HF tokenizers'
     (the bloom_style tokenizer the runs used, and the same tokenizer with GPT-2's pre-tokenizer, pre "gpt-2");
   - the chat template rendered by llama-cpp-python's Jinja chat formatter against the Alpaca prompt;
   - greedy decoding of instructions against polyalpaca_evaluate's greedy responses of the same runs
     (full model; base + --lora adapter; merged model), and the prompts' logits against HF transformers and PEFT.

Pinned versions (checked at runtime): llama-cpp-python==0.3.36, tokenizers==0.23.3, transformers==5.24.0,
peft==0.21.2, torch==2.15.0, numpy==2.4.6

    cmake --build build --target polyalpaca_export polyalpaca_train_bloom_mini_full polyalpaca_train_bloom_mini_lora \\
        polyalpaca_evaluate_bloom_mini
    /opt/pa-venv/bin/pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llama-cpp-sdist
    tar xzf /tmp/llama-cpp-sdist/llama_cpp_python-0.3.36.tar.gz -C /tmp/llama-cpp-sdist   # the converter
    /opt/pa-venv/bin/python tools/check_llama_cpp_tuned.py WORK_DIR \\
        /tmp/llama-cpp-sdist/llama_cpp_python-0.3.36/vendor/llama.cpp
"""

import functools
import importlib.metadata
import json
import pathlib
import subprocess
import sys

import numpy as np

PINNED = {"llama_cpp_python": "0.3.36", "tokenizers": "0.23.3", "transformers": "5.24.0", "peft": "0.21.2",
          "torch": "2.15.0", "numpy": "2.4.6"}
REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD = REPO / "build/examples"
FIXTURES = REPO.parent / "shared/fixtures/alpaca-multilingual"
TOKENIZERS = REPO / "tests/golden/data/tokenizers"
TOKENIZER = TOKENIZERS / "bloom_style.tokenizer.json"
LANGUAGES = ["en", "fr", "ru"]
HELD_OUT = 6        # instructions per language: the last ones without input of each fixture file
NEW_TOKENS = 24
# added tokens whose HF matching depends on lstrip / rstrip / single_word, which GGUF cannot carry
ATTRIBUTE_TOKENS = ["Kiwi", "[MASK]", "<sep>"]


def check_versions():
    for name, want in PINNED.items():
        found = importlib.metadata.version(name)
        if found != want:
            raise SystemExit(f"{name} {found} is installed but this check is pinned to {want}")


def run(*args):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def train(work):
    data = [f"{lang}={FIXTURES / f'{lang}.json'}" for lang in LANGUAGES]
    common = ["--tokenizer", TOKENIZER, "--data", *data, "--languages", *LANGUAGES, "--strategy", "multilingual",
              "--val-size", "24", "--global-batch", "16", "--micro-batch", "8", "--cutoff", "96",
              "--warmup-steps", "4", "--budget-records", "4800", "--eval-every", "50", "--quiet"]
    run(BUILD / "polyalpaca_train_bloom_mini_full", *common, "--lr", "3e-3", "--output-dir", work / "full")
    run(BUILD / "polyalpaca_train_bloom_mini_lora", *common, "--lr", "3e-3", "--model-dir", work / "full/model",
        "--merge", "--output-dir", work / "lora")


def export(work):
    exported = {}
    for name, args in {"full": ["--model", work / "full"], "merged": ["--model", work / "lora/merged"],
                       "adapter": ["--model", work / "full/model", "--adapter", work / "lora"]}.items():
        out = work / f"{name}.gguf"
        extra = ["--chat-template", "alpaca"] if name == "merged" else []
        extra += [] if name == "adapter" else ["--type", "f32"]
        print(run(BUILD / "polyalpaca_export", *args, *extra, "--out", out).strip())
        exported[name] = out
    return exported


# Runs the converter with the pre-tokenizer name handed over (argv[1]) instead of its hash lookup.
CONVERTER = """
import pathlib, runpy, sys
root, pre = pathlib.Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(root))
sys.argv = [str(root / "convert_hf_to_gguf.py")] + sys.argv[3:]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
runpy.run_path(str(root / "convert_hf_to_gguf.py"), run_name="__main__")
"""


def tokenizer_fields(path):
    from gguf import GGUFReader
    reader = GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items() if name.startswith("tokenizer.")}


def check_converter(work, llama_cpp, ours, model_dir, pre):
    """The tokenizer keys of `ours` against the converter's file of `model_dir`."""
    runner = work / "converter_runner.py"
    runner.write_text(CONVERTER)
    theirs = work / f"converter_{model_dir.name}.gguf"
    run(sys.executable, runner, llama_cpp, pre, model_dir, "--outtype", "f32", "--outfile", theirs)
    a, b = tokenizer_fields(ours), tokenizer_fields(theirs)
    same = [k for k in sorted(set(a) & set(b)) if a[k] == b[k]]
    differ = [f"{k}: ours {str(a.get(k, '-'))[:60]}, converter {str(b.get(k, '-'))[:60]}"
              for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    print(f"| {model_dir.name} | {pre} | {len(same)}: {', '.join(k.removeprefix('tokenizer.') for k in same)} | "
          f"{'; '.join(differ) or 'none'} |")


def gpt2_variant(work):
    """The full run's model with bloom_style's tokenizer given GPT-2's pre-tokenizer and a tokenizer_config.json, and
    its export."""
    gpt2_dir = work / "gpt2_tokenizer"
    gpt2_dir.mkdir(exist_ok=True)
    for f in (work / "full/model").iterdir():
        if f.name != "tokenizer.json":
            (gpt2_dir / f.name).write_bytes(f.read_bytes())
    if not (work / "full/model/tokenizer.json").exists():  # trainers that predate copying it
        (work / "full/model/tokenizer.json").write_bytes(TOKENIZER.read_bytes())
    file = json.loads(TOKENIZER.read_text())
    file["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    (gpt2_dir / "tokenizer.json").write_text(json.dumps(file))
    # special tokens and a chat template as HF's save_pretrained writes them, read by both the converter and ours
    (gpt2_dir / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}))
    gpt2_gguf = work / "gpt2_tokenizer.gguf"
    run(BUILD / "polyalpaca_export", "--model", gpt2_dir, "--type", "f32", "--out", gpt2_gguf)
    return gpt2_dir, gpt2_gguf


def check_llama_cpp_tokenizer(work, model_gguf, gpt2_dir, gpt2_gguf):
    from llama_cpp import Llama
    from tokenizers import Tokenizer
    cases = json.loads((TOKENIZERS / "cases.json").read_text())
    texts = cases["texts"] + cases["random_texts"]
    print("\n| tokenizer | llama.cpp pre | texts | llama.cpp ids equal to HF tokenizers' | texts left out |")
    print("|---|---|---:|---:|---:|")
    for name, gguf_path, tokenizer_json, pre in [("bloom_style", model_gguf, TOKENIZER, "bloom"),
                                                   ("bloom_style, GPT-2 pre-tokenizer", gpt2_gguf,
                                                    gpt2_dir / "tokenizer.json", "gpt-2")]:
        hf = Tokenizer.from_file(str(tokenizer_json))
        llm = Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
        kept = [t for t in texts if not any(a in t for a in ATTRIBUTE_TOKENS)]
        same = sum(llm.tokenize(t.encode(), add_bos=False, special=True) ==
                   hf.encode(t, add_special_tokens=False).ids for t in kept)
        print(f"| {name} | {pre} | {len(kept)} | {same} | {len(texts) - len(kept)} (added tokens with "
              f"lstrip/rstrip/single_word) |")
        llm.close()


def check_sentencepiece_json(work, llama_cpp):
    """A tiny random LLaMA saved by transformers with each byte-fallback tokenizer.json of the golden set, exported
    by polyalpaca and by llama.cpp's converter (_set_vocab_llama_hf, every piece scored -1000): llama.cpp's ids
    from each file against HF tokenizers', on every text and on those where SentencePiece's own rules agree with
    HF's (no leading space, no added token)."""
    import torch
    import transformers
    from llama_cpp import Llama
    from tokenizers import Tokenizer
    transformers.utils.logging.disable_progress_bar()
    cases = json.loads((TOKENIZERS / "cases.json").read_text())
    texts = cases["texts"] + cases["random_texts"]
    runner = work / "converter_runner.py"
    runner.write_text(CONVERTER)
    print("\n| tokenizer.json | file | texts | llama.cpp ids equal to HF tokenizers' | of the comparable texts |")
    print("|---|---|---:|---:|---:|")
    for name in ["llama_style", "llama_legacy"]:
        directory = work / name
        config = transformers.LlamaConfig(vocab_size=2048, hidden_size=64, intermediate_size=128,
                                          num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                                          max_position_embeddings=128)
        torch.manual_seed(0)
        transformers.LlamaForCausalLM(config).save_pretrained(directory)
        source = TOKENIZERS / f"{name}.tokenizer.json"
        (directory / "tokenizer.json").write_bytes(source.read_bytes())
        ours, theirs = work / f"{name}.gguf", work / f"{name}_converter.gguf"
        run(BUILD / "polyalpaca_export", "--model", directory, "--type", "f32", "--out", ours)
        run(sys.executable, runner, llama_cpp, "default", directory, "--outtype", "f32", "--outfile", theirs)
        hf = Tokenizer.from_file(str(source))
        added = [t["content"] for t in json.loads(source.read_text())["added_tokens"]]
        comparable = [t for t in texts if not t.startswith(" ") and not any(a in t for a in added)]
        for label, path in [("polyalpaca_export", ours), ("convert_hf_to_gguf.py", theirs)]:
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
            same = [llm.tokenize(t.encode(), add_bos=True, special=True) == hf.encode(t).ids for t in texts]
            llm.close()
            same_comparable = sum(s for t, s in zip(texts, same) if t in comparable)
            print(f"| {name} | {label} | {len(texts)} | {sum(same)} | {same_comparable} of {len(comparable)} |")


def alpaca_prompt(instruction):
    template = json.loads((REPO / "templates/alpaca.json").read_text())
    return template["prompt_no_input"].format(instruction=instruction)


def response_after_prompt(text):
    """data/prompt_template.hpp's response_after_prompt for the Alpaca template."""
    text = text.split("### Response:")[0]
    text = text.split("\n### ")[0]
    return text.strip()


def held_out():
    prompts = []
    for lang in LANGUAGES:
        records = [r for r in json.loads((FIXTURES / f"{lang}.json").read_text()) if not r["input"]]
        prompts += [(lang, f"{lang}{i}", r["instruction"]) for i, r in enumerate(records[-HELD_OUT:])]
    return prompts


def evaluate_ours(work, prompts):
    tests = work / "tests"
    tests.mkdir(exist_ok=True)
    for lang in LANGUAGES:
        lines = [json.dumps({"id": pid, "prompt": instruction}) for l, pid, instruction in prompts if l == lang]
        (tests / f"test_{lang}.jsonl").write_text("\n".join(lines) + "\n")
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    for name in ["full", "lora"]:
        link = runs / name
        if not link.exists():
            link.symlink_to(work / name)
    run(BUILD / "polyalpaca_evaluate_bloom_mini", "--runs", runs, "--tests", tests, "--tokenizer", TOKENIZER,
        "--decoding", "greedy", "--max-new-tokens", NEW_TOKENS, "--output", work / "evaluation", "--quiet")
    responses = {}
    for name in ["full", "lora"]:
        for line in (work / "evaluation/responses" / f"{name}.jsonl").read_text().splitlines():
            r = json.loads(line)
            responses[(name, r["id"])] = r["response"]
    return responses


def llama_cpp_greedy(model_path, prompts, lora_path=None):
    from llama_cpp import Llama
    kwargs = {"lora_path": str(lora_path)} if lora_path else {}
    llm = Llama(model_path=str(model_path), n_ctx=256, n_batch=256, n_ubatch=256, logits_all=True, n_threads=2,
                verbose=False, type_k=0, type_v=0, **kwargs)
    eos = llm.token_eos()
    out = {}
    logits = {}
    for _, pid, instruction in prompts:
        llm.reset()
        ids = llm.tokenize(alpaca_prompt(instruction).encode(), add_bos=False, special=False)
        llm.eval(ids)
        logits[pid] = (ids, np.array(llm.scores[:len(ids)], dtype=np.float32))
        new = []
        while len(new) < NEW_TOKENS:
            following = int(np.argmax(llm.scores[len(ids) + len(new) - 1]))
            if following == eos:
                break
            new.append(following)
            llm.eval([following])
        out[pid] = response_after_prompt(llm.detokenize(new).decode("utf-8", errors="replace"))
    llm.close()
    return out, logits


@functools.cache
def hf_model(work, name):
    """HF transformers' model of the full run, with PEFT's LoRA of the adapter run when `name` is "adapter"."""
    import torch
    import transformers
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(work / "full/model"), dtype=torch.float32)
    if name == "adapter":
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(work / "lora/adapter"))
    return model.eval()


def hf_logits(work, name, ids):
    import torch
    with torch.no_grad():
        return hf_model(work, name)(torch.tensor([ids])).logits[0].numpy()


def check_chat_template(path, prompts):
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    template = llm.metadata["tokenizer.chat_template"]
    llm.close()
    formatter = Jinja2ChatFormatter(template=template, eos_token="</s>", bos_token="<s>")
    same = sum(formatter(messages=[{"role": "user", "content": instruction}]).prompt == alpaca_prompt(instruction)
               for _, _, instruction in prompts)
    turn = formatter(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]).prompt
    print(f"\nchat template of {path.name} in llama-cpp-python's Jinja formatter: {same} of {len(prompts)} prompts "
          f"equal to the Alpaca prompt; a user+assistant turn ends {turn[-24:]!r}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    check_versions()
    work, llama_cpp = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).resolve()
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work directory {work}; llama-cpp-python {PINNED['llama_cpp_python']} (llama.cpp built from its sdist), "
          f"CPU\n")
    if not (work / "lora/merged/config.json").exists():
        train(work)
    exported = export(work)
    gpt2_dir, gpt2_gguf = gpt2_variant(work)
    print("\n| model directory | pre | tokenizer keys equal to the converter's | keys that differ |")
    print("|---|---|---|---|")
    check_converter(work, llama_cpp, exported["full"], work / "full/model", "bloom")
    check_converter(work, llama_cpp, gpt2_gguf, gpt2_dir, "gpt-2")
    check_llama_cpp_tokenizer(work, exported["full"], gpt2_dir, gpt2_gguf)
    check_sentencepiece_json(work, llama_cpp)
    prompts = held_out()
    check_chat_template(exported["merged"], prompts)
    ours = evaluate_ours(work, prompts)
    print(f"\ngreedy decoding of {len(prompts)} instructions ({', '.join(LANGUAGES)}), {NEW_TOKENS} new "
          f"tokens, F32:\n")
    print("| run | llama.cpp file | responses equal to polyalpaca_evaluate's | distinct responses | max relative logit "
          "difference to HF (prompt tokens) | same argmax |")
    print("|---|---|---:|---:|---:|---:|")
    for run_name, label, model_path, lora_path, reference in [
            ("full", "full.gguf", exported["full"], None, "full"),
            ("lora", "full.gguf + adapter.gguf (--lora)", exported["full"], exported["adapter"], "adapter"),
            ("lora", "merged.gguf", exported["merged"], None, "adapter")]:
        responses, logits = llama_cpp_greedy(model_path, prompts, lora_path)
        same = sum(responses[pid] == ours[(run_name, pid)] for _, pid, _ in prompts)
        worst, argmax = 0.0, []
        for _, pid, _ in prompts:
            ids, theirs = logits[pid]
            hf = hf_logits(work, reference, ids)
            worst = max(worst, float(np.abs(theirs - hf).max() / np.abs(hf).max()))
            argmax.append(float((theirs.argmax(-1) == hf.argmax(-1)).mean()))
        distinct = len(set(responses.values()))
        print(f"| {run_name} | {label} | {same} of {len(prompts)} | {distinct} | {worst:.2e} | {np.mean(argmax):.1%} |")
        for _, pid, _ in prompts:
            if responses[pid] != ours[(run_name, pid)]:
                print(f"|  | {pid}: llama.cpp {responses[pid]!r} | polyalpaca {ours[(run_name, pid)]!r} | | |")


if __name__ == "__main__":
    main()
