#!/usr/bin/env python3
"""Writes tests/golden/data/tokenizers/suite_bpe.json: the merges HF tokenizers' BpeTrainer learns from a synthetic
suite's text, with the pre-tokenizer and alphabet the study's suite BPE uses (study/byte_tokenizer.hpp), and the
tokens HF's trained tokenizer cuts a set of prompts and answers into. polyalpaca's trainer (tokenizer/bpe_trainer.hpp)
must learn the same merges in the same order, and its tokenizer.json must cut the texts into the same tokens.

The suite comes from polyalpaca_make_suite (its config is recorded in the golden file, and the test builds the same
suite in memory):

    build/examples/polyalpaca_make_suite --out /tmp/bpe-suite --languages en,ru,zh,es --zero-shot es \\
        --train 300 --test 20 --pretrain 400 --seed 3
    /opt/pa-venv/bin/python tools/make_bpe_golden.py /tmp/bpe-suite

Pinned version (checked at runtime): tokenizers==0.23.3 (pip install tokenizers==0.23.3 into /opt/pa-venv).
"""

import json
import pathlib
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

PINNED = "0.23.3"
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "tokenizers" / "suite_bpe.json"
# study/byte_tokenizer.hpp: suite_bpe_split_pattern
SPLIT = r"\s+|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+"
VOCAB = 640  # 3 special tokens, 256 bytes, 381 learned


def compact_prompt(instruction, input_text):
    """study/byte_tokenizer.hpp's compact template."""
    if input_text:
        return f"### Instruction:\n{instruction}\n\n### Input:\n{input_text}\n\n### Response:\n"
    return f"### Instruction:\n{instruction}\n\n### Response:\n"


def main():
    if tokenizers.__version__ != PINNED:
        sys.exit(f"tokenizers {tokenizers.__version__} found; this script is pinned to {PINNED}")
    suite = pathlib.Path(sys.argv[1])
    description = json.loads((suite / "suite.json").read_text(encoding="utf-8"))
    config = {key: description[key] for key in
              ("seed", "train_per_language", "test_per_language", "pretrain_sentences_per_language")}
    config["languages"] = [entry["code"] for entry in description["languages"]]
    config["zero_shot"] = [entry["code"] for entry in description["languages"] if entry["zero_shot"]]
    texts = []
    for lang in config["languages"]:
        train = suite / "train" / f"{lang}.json"
        if train.exists():
            for r in json.loads(train.read_text(encoding="utf-8")):
                texts.append(compact_prompt(r["instruction"], r["input"]) + r["output"])
    for lang in config["languages"]:
        texts.extend(line for line in (suite / "pretrain" / f"{lang}.txt").read_text(encoding="utf-8").split("\n") if line)

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]  # "left right", as tokenizer.json had them

    cases = []
    for lang in config["languages"]:
        lines = (suite / "test" / f"test_{lang}.jsonl").read_text(encoding="utf-8").split("\n")
        for line in [l for l in lines if l][:6]:
            t = json.loads(line)
            for text in (compact_prompt(t["instruction"], t["input"]), t["answer"]):
                cases.append({"text": text, "tokens": tokenizer.encode(text).tokens})
    for text in ["  two  spaces, 123 and 4567!", "unseen wörds: Übermut, 不见的词", "\n\n### Response:\n"]:
        cases.append({"text": text, "tokens": tokenizer.encode(text).tokens})

    OUT.write_text(json.dumps({"suite_config": config, "vocab_size": VOCAB, "split_pattern": SPLIT,
                               "tokenizers_version": PINNED, "merges": merges, "cases": cases},
                              ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(merges)} merges, {len(cases)} cases from {len(texts)} texts")


if __name__ == "__main__":
    main()
