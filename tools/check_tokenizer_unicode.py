#!/usr/bin/env python3
"""Checks include/polyalpaca/tokenizer/'s Unicode normalizers and pre-tokenizers against HF tokenizers over all of
Unicode, beyond what the committed goldens hold: every code point alone through each per-character normalizer and
BertPreTokenizer, all code points in order and shuffled (in chunks) through every component, and random strings of
hard characters through the components, whole encodes, and the full nmt_nfkc charsmap (240 KB, not committed).

HF's outputs go to a temporary folder; tools/check_tokenizer_unicode.cpp (compiled here with g++, linking oniguruma
and ICU) compares. Needs the pins of make_tokenizer_golden.py in the venv; run from anywhere:

    /opt/pa-venv/bin/python tools/check_tokenizer_unicode.py [--random 20000] [--seed 1]

Prints the number of checks and of mismatches (the first ones in full); exits non-zero on any mismatch.
"""

import argparse
import json
import pathlib
import random
import subprocess
import sys
import tempfile

import tokenizers
import transformers.convert_slow_tokenizer
from tokenizers import normalizers as N, pre_tokenizers as P

import make_tokenizer_golden
import tokenizer_unicode_golden as golden

ROOT = pathlib.Path(__file__).resolve().parent.parent

POOL = (list("abcXYZ019 .,!?-'\"()") + [" "] * 10 +
        list("\t\n\r\x00\x01\x07\x0b\x0c\x1b\x7f\x85\x8f\x9f\u00a0\u00ad\u1680\u2000\u200b\u200c\u200d\u200e\u2028"
             "\u2029\u202f\u3000\ufeff\ufffd\ue000\u2581") +
        list("\u0300\u0301\u0302\u0303\u0308\u030a\u0316\u0323\u0327\u0331\u0345\u0344\u0340\u0f73\u0f75\u0f81\u093c"
             "\u094d\u09bc\u05b0\u05b4\u05bc\u05c1\u064b\u0650\u0651\u0670\u0e31\u0e34\u0e48\u3099\u309a\uff9e\uff9f"
             "\u20dd\u0488\u1ab0\u1dc0\ufe20") +
        list("éÅåñÑüÜçÇøÆœßẞİıIiǅǄǆǲΣσςΐΰŉǰẛῼᾈﬁﬂﬀﬃﬆⅫⅷ①⑳㎏㍿™℃½²₂ſ…Ω℧Åﬓ") + list("ＡＢＣａｂｃ１２３！？（）ｶﾀﾅﾞﾟｰ　") +
        list("한국어각ᄀ까ᅢᆨᆩㅎㅏㄴ中文漢字𠜎豈丽⺠⼀〇ひらがなカタカナーガゟヿ") + list("क़खग्षत्रािीुे्ँंःਜ਼ড়") +
        list("العربيةعَرَبِيّةﻻﷺשָׁלוֹםภาษาไทย") +
        ["👩🏽\u200d💻", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "👍🏿", "🇳🇴", "❤️", "1️⃣", "🦙", "😀", "\U00011935\U00011930",
         "\U00011938", "🥱", "🫠", "㋿", "\u0378", "ꟲ", "\u08e2", "\u166d", "\u1885", "\U000e0100", "\U0001d400"])


def code_point_texts(seed):
    """All code points (no surrogates) in order and shuffled, in chunks of 512."""
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    shuffled = points[:]
    random.Random(seed).shuffle(shuffled)
    return ["".join(p[i:i + 512]) for p in (points, shuffled) for i in range(0, len(p), 512)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--random", type=int, default=20000, help="random strings of hard characters")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cxx", default="g++")
    args = parser.parse_args()
    make_tokenizer_golden.check_versions()

    full_map = golden.spm_model(normalization_rule_name="nmt_nfkc")
    precompiled = N.Precompiled(full_map.normalizer_spec.precompiled_charsmap)
    converted = transformers.convert_slow_tokenizer.SpmConverter.normalizer(None, full_map)
    bert = N.BertNormalizer
    norm = [N.NFC(), N.NFD(), N.NFKC(), N.NFKD(), N.Lowercase(), N.StripAccents(), N.Nmt(), N.ByteLevel(), bert(),
            bert(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False),
            bert(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False),
            bert(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False), precompiled,
            tokenizers.SentencePieceUnigramTokenizer().normalizer]
    pre = [P.BertPreTokenizer(), P.CharDelimiterSplit("-"), P.UnicodeScripts(), P.FixedLength(length=3)]
    first = P.Metaspace(prepend_scheme="first")
    pairs = [(bert(), P.BertPreTokenizer()), (N.Nmt(), first), (bert(), first), (converted, first),
             (precompiled, first), (N.StripAccents(), P.Sequence([P.UnicodeScripts(), first]))]

    rng = random.Random(args.seed)
    texts = ["".join(rng.choice(POOL) for _ in range(rng.choice([1, 2, 3, 5, 8, 13, 30]))) for _ in range(args.random)]
    singles = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    long_texts = code_point_texts(args.seed)

    def component(kind, c):
        return golden.component_json(kind, c)

    sets = [
        {"name": "single code points", "texts": singles,
         "normalizers": [{"json": component("normalizer", n), "normalized": [n.normalize_str(t) for t in singles]}
                         for n in norm[:12]],
         "pre_tokenizers": [{"json": component("pre_tokenizer", pre[0]),
                             "pieces": [[x for x, _ in pre[0].pre_tokenize_str("a" + t + "a")] for t in singles]}],
         "wrap": "a"},
        {"name": "code points in order and shuffled", "texts": long_texts,
         "normalizers": [{"json": component("normalizer", n), "normalized": [n.normalize_str(t) for t in long_texts]}
                         for n in norm],
         "pre_tokenizers": [{"json": component("pre_tokenizer", p),
                             "pieces": [[x for x, _ in p.pre_tokenize_str(t)] for t in long_texts]} for p in pre]},
        {"name": "random strings", "texts": texts,
         "normalizers": [{"json": component("normalizer", n), "normalized": [n.normalize_str(t) for t in texts]}
                         for n in norm],
         "pre_tokenizers": [{"json": component("pre_tokenizer", p),
                             "pieces": [[x for x, _ in p.pre_tokenize_str(t)] for t in texts]} for p in pre],
         "pipelines": [{"normalizer": component("normalizer", n), "pre_tokenizer": component("pre_tokenizer", p),
                        "pieces": golden.pipeline_pieces(n, p, texts)} for n, p in pairs]},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "cases.json").write_text(json.dumps(sets, ensure_ascii=False), encoding="utf-8")
        program = tmp / "check_tokenizer_unicode"
        subprocess.run([args.cxx, "-std=c++20", "-O1", "-I", str(ROOT / "include"),
                        str(ROOT / "tools" / "check_tokenizer_unicode.cpp"), "-o", str(program), "-lonig", "-licuuc"],
                       check=True)
        sys.exit(subprocess.run([str(program), str(tmp / "cases.json")]).returncode)


if __name__ == "__main__":
    main()
