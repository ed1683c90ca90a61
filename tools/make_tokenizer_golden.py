#!/usr/bin/env python3
"""Writes tests/golden/data/tokenizers/: small tokenizers trained here with HF tokenizers, and the ids and decoded
strings that HF tokenizers, transformers and sentencepiece produce for a multilingual text set.

Pinned versions (checked at runtime): tokenizers==0.23.3, transformers==5.24.0, sentencepiece==0.2.3,
protobuf==7.36.2.

    /opt/pa-venv/bin/pip install tokenizers==0.23.3 transformers==5.24.0 sentencepiece==0.2.3 protobuf==7.36.2
    /opt/pa-venv/bin/python tools/make_tokenizer_golden.py [--fixtures ../shared/fixtures]

Committed outputs (all small):
  bloom_style.tokenizer.json    byte-level BPE with BLOOM's normalizer/pre-tokenizer/post-processor/decoder layout
  llama_style.tokenizer.json    SentencePiece-style BPE: byte fallback, Metaspace pre-tokenizer, <s> $A </s>
  llama_legacy.tokenizer.json   the older LLaMA tokenizer.json layout: Prepend/Replace normalizers, no pre-tokenizer
  bpe_unk.tokenizer.json        BPE with <unk>, fuse_unk, "##" continuing-subword prefix, Whitespace-style splitting
  cases.json                    texts, and per tokenizer the HF ids (with/without special tokens) and decodings;
                                for the fixtures' tokenizer.model / tok512.model (when --fixtures exists) only ids and
                                decodings: the tokenizer.json that transformers converts tokenizer.model into is derived
                                from a shared fixture and is not committed.
  unicode_cases.json, sentencepiece_bpe.tokenizer.json
                                the Unicode normalizers and pre-tokenizers (NFKC, BertNormalizer, Precompiled,
                                UnicodeScripts, ...) on hard cases, and an NFKC tokenizer: see tokenizer_unicode_golden.py
"""

import argparse
import hashlib
import json
import pathlib
import random
import re
import shutil
import sys
import tempfile

import google.protobuf
import sentencepiece
import tokenizers
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

import tokenizer_unicode_golden  # tools/: the Unicode normalizers and pre-tokenizers

PINNED = {"tokenizers": "0.23.3", "transformers": "5.24.0", "sentencepiece": "0.2.3", "protobuf": "7.36.2"}
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "golden" / "data" / "tokenizers"
BLOOM_SPLIT = " ?[^(\\s|[.,!?…。，、।۔،])]+"   # BLOOM's real Split regex (an Oniguruma nested character class)


def check_versions():
    found = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
             "sentencepiece": sentencepiece.__version__, "protobuf": google.protobuf.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} is installed but the golden files are pinned to {want}")
    return found


# Training corpus: short parallel-ish paragraphs in many languages, plus code and numbers.
CORPUS = [
    "The quick brown fox jumps over the lazy dog. Instruction tuning teaches a language model to follow requests.",
    "Give three tips for staying healthy: eat a balanced diet, exercise regularly and get enough sleep.",
    "Write a short poem about the sea. Explain why the sky is blue. Translate the sentence into French.",
    "Бързата кафява лисица прескача мързеливото куче. Дайте три съвета за здравословен живот.",
    "Езиковите модели се обучават с инструкции на много езици, включително български и руски.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy. Uveďte tři tipy, jak zůstat zdravý a v dobré kondici.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Nenne drei Tipps für ein gesundes Leben.",
    "Größere Sprachmodelle verstehen Anweisungen besser; die Straße führt über die Brücke.",
    "El rápido zorro marrón salta sobre el perro perezoso. Dame tres consejos para mantenerte sano.",
    "¿Por qué el cielo es azul? ¡Escribe un poema corto sobre el mar! La niña comió piña en España.",
    "Nopea ruskea kettu hyppää laiskan koiran yli. Anna kolme vinkkiä terveenä pysymiseen.",
    "Kielimallit oppivat seuraamaan ohjeita; hyvää päivää ja kiitos paljon äidille.",
    "Le renard brun rapide saute par-dessus le chien paresseux. Donnez trois conseils pour rester en bonne santé.",
    "Où est la bibliothèque ? C'est l'été, les élèves préfèrent la crème brûlée à la française.",
    "Быстрая коричневая лиса прыгает через ленивую собаку. Дайте три совета, как оставаться здоровым.",
    "Языковые модели учатся следовать инструкциям. Съешь же ещё этих мягких французских булок.",
    "敏捷的棕色狐狸跳过了懒狗。请给出三个保持健康的建议：均衡饮食、定期锻炼、充足睡眠。",
    "语言模型可以通过指令微调学习遵循用户的请求。为什么天空是蓝色的？",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर से कूदती है। स्वस्थ रहने के लिए तीन सुझाव दीजिए।",
    "भाषा मॉडल निर्देशों का पालन करना सीखते हैं। आसमान नीला क्यों है?",
    "Den raske brune reven hopper over den late hunden. Gi tre tips for å holde seg frisk.",
    "Språkmodeller lærer å følge instruksjoner; blåbærsyltetøy og rømmegrøt på søndag.",
    "素早い茶色の狐がのろまな犬を飛び越える。健康を保つための三つのヒントを教えてください。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다. 건강을 유지하기 위한 세 가지 팁을 알려주세요.",
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i, add(i, 2 * i))\n",
    "int main() {\n\tstd::vector<int> v = {1, 2, 3};\n\treturn v.size() > 2 ? 0 : 1;\n}\n",
    "Prices rose 3.5% in 2023; 1,234,567 people paid $42.99 or €39,90 each. Call 555-0100 at 10:30.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14159 2.71828 ½ ¾ 1st 2nd 3rd.",
]


def corpus_lines():
    # Repeat with small variations so pairs recur often enough to be merged.
    for repeat in range(6):
        for line in CORPUS:
            yield line if repeat % 2 == 0 else line.lower()


# The text set every tokenizer is checked on.
TEXTS = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    "\t\n \r\n",
    "Hello world",
    " Hello world",
    "Hello World!",
    "  leading and trailing  ",
    "Hello, y'all! How are you 😁 ?",
    "Give three tips for staying healthy.",
    "Бързата кафява лисица прескача мързеливото куче.",
    "нещо на Български",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Führer, Straße, Größe",
    "¿Por qué el cielo es azul? ¡Mañana!",
    "Nopea ruskea kettu hyppää laiskan koiran yli.",
    "Le renard brun rapide saute par-dessus le chien paresseux. Où est l'été ?",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "敏捷的棕色狐狸跳过了懒狗。为什么天空是蓝色的？",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर से कूदती है। क्या?",
    "Den raske brune reven hopper over den late hunden. Blåbær, rømme, ærfugl.",
    "素早い茶色の狐がのろまな犬を飛び越える。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다.",
    "Zażółć gęślą jaźń. Ελληνικά γράμματα. עברית. العربية، نعم۔",
    "e\u0301te\u0301 vs été; n\u0303 vs ñ; A\u030a vs Å",
    "🦙🚀 (normal) 😶‍🌫️ (emoji ZWJ) ✅ 👩🏽‍💻 🇳🇴",
    "中文, 日本語, 한국어 and 𠜎𠜱𠝹 (CJK extension B)",
    "tabs\tand\t\tspaces    and\nnewlines\n\n\nend",
    "    Hello\n    Hello",
    "no-break\u00a0space, ideographic\u3000space, line\u2028separator, nel\u0085x",
    "3 33 333 3333 33333 1234567890 3.14159 1,000,000 ½ ¾ ²",
    "w048 7tuijk dsdfhu",
    "def add(a, b):\n    return a + b  # sum\n",
    "int main() { std::vector<int> v{1, 2}; return v[0] != 0 ? 1 : 0; }",
    "!!!!!! ??? ... ,,, ;;; --- ___ *** ``` ~~~",
    "I've been 'told' he's here, we'll see; they're sure you'd agree, I'm sure.",
    "Cửa Việt, Tiếng Việt có dấu",
    "x" * 300,
    "Supercalifragilisticexpialidocious antidisestablishmentarianism " * 3,
]

# Texts with special/added tokens in them: only for the tokenizer.json tokenizers (SentencePiece treats them as text).
SPECIAL_TEXTS = [
    "<s>Hello</s>",
    "<s> Hello </s> world",
    "Hi [MASK] there and   [MASK]x",
    "a<sep>   b<sep>",
    "Kiwi Kiwis aKiwi Kiwi. kiwi",
    "I love new york and New York",
    "<pad><unk><s></s>",
    "text <|im_start|>user\nhi<|im_end|>",
    "f+Kiwi¼ and р³Kiwi, Kiwi_ Kiwi\u200d",
]


def random_texts(count=300, seed=1234):
    """Seeded random mixes of scripts, whitespace kinds, digits, punctuation, emoji and added-token strings."""
    rng = random.Random(seed)
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3 + [" "] * 40 +
            list("\t\n\r\x0b\x0c\u00a0\u3000\u2028\u2029\u0085\u200b\u200d\u2009\u202f") +
            list(".,!?…。，、।۔،;:'\"()[]{}<>-_=+*/\\|@#$%^&~`") + list("éèêëàâäôöûüçñßøåæœ") +
            ["e\u0301", "a\u0308"] + list("абвгдежзийклмнопрстуфхцчшщъыьэюяБЪЩαβγδ") +
            list("敏捷的棕色狐狸跳过了懒狗为什么天空是蓝色あいうえおカタカナ한국어") + list("तेज़भूरीलोमड़ीالعربيةעברית") +
            ["🦙", "🚀", "👩🏽\u200d💻", "😶\u200d🌫️", "🇳🇴", "𠜎"] + list("½²³¼٣߂") + ["'s", "'ll", "'re"] +
            ["<s>", "</s>", "<unk>", "<pad>", "[MASK]", "<sep>", "Kiwi", "new york", "<|im_start|>", "▁", "▁▁"])
    return ["".join(rng.choice(pool) for _ in range(rng.choice([1, 2, 3, 5, 8, 13, 30, 80]))) for _ in range(count)]


RANDOM_TEXTS = random_texts()


def byte_level_alphabet():
    return pre_tokenizers.ByteLevel.alphabet()


def train_bloom_style():
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(BLOOM_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=2000, show_progress=False, initial_alphabet=byte_level_alphabet(),
                                  special_tokens=["<unk>", "<s>", "</s>", "<pad>"])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, special=True),
                            AddedToken("<sep>", rstrip=True, special=True),
                            AddedToken("<|im_start|>", special=True), AddedToken("<|im_end|>", special=True)])
    tok.add_tokens([AddedToken("Kiwi", single_word=True, special=False)])
    return tok


def with_byte_pieces(tok, n_special):
    """Inserts <0x00>..<0xFF> after the first n_special ids, as SentencePiece byte-fallback vocabularies have them."""
    data = json.loads(tok.to_str())
    vocab = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])
    head, tail = vocab[:n_special], vocab[n_special:]
    names = [name for name, _ in head] + [f"<0x{b:02X}>" for b in range(256)] + [name for name, _ in tail]
    data["model"]["vocab"] = {name: i for i, name in enumerate(names)}
    for added in data["added_tokens"]:
        added["id"] = data["model"]["vocab"][added["content"]]
    return Tokenizer.from_str(json.dumps(data))


def train_llama_style():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=2000 - 256, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok = with_byte_pieces(tok, 3)
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first"),
                                     decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 1), ("</s>", 2)])
    tok.add_special_tokens([AddedToken("<pad>", special=True)])
    return tok


def train_llama_legacy():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=2000 - 256, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok = with_byte_pieces(tok, 3)
    # The layout of the LLaMA tokenizer.json files on the Hub before Metaspace(prepend_scheme) existed.
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    tok.add_tokens([AddedToken("new york", normalized=True, special=False)])
    return tok


def train_bpe_unk():
    """BPE with <unk>/fuse_unk and the "##" continuing-subword prefix. HF's trainer assigns "##" ids in hash order
    (not reproducible), so a plain BPE is trained and mirrored: each merge (a, b) becomes (a, ##b) -> ab and
    (##a, ##b) -> ##ab, which encodes every word exactly as the plain model does."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=700, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    plain = json.loads(tok.to_str())["model"]
    names = [name for name, _ in sorted(plain["vocab"].items(), key=lambda kv: kv[1])]
    specials = {"<unk>", "<s>", "</s>"}
    names += ["##" + name for name in names if name not in specials]
    merges = []
    for a, b in plain["merges"]:
        merges += [[a, "##" + b], ["##" + a, "##" + b]]
    model = models.BPE(vocab={name: i for i, name in enumerate(names)}, merges=[tuple(m) for m in merges],
                       unk_token="<unk>", fuse_unk=True, continuing_subword_prefix="##")
    out = Tokenizer(model)
    out.add_special_tokens(["<unk>", "<s>", "</s>"])
    out.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Replace(Regex("\\s+"), " ")])
    out.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation(behavior="contiguous")])
    out.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return out


COMPONENT_TEXTS = [
    "", " ", "baaac", "the-final--countdown", "--a--", "Hello,  world!\tHow are\n\nyou?",
    "  leading and trailing  ", "x\u00a0y\u3000z\u2028w\u0085v", "3 333 4444 ½ ² ٣ 12.5% $4,000",
    "«Quoi ?» ¿Qué? …wait— (a) [b] {c}", "I'm you're we'll it's THEY'RE", "敏捷的棕色狐狸。为什么？",
    "e\u0301te\u0301 👩🏽\u200d💻", "▁already▁meta spaced", "a.b,c!d?e…f。g，h、i।j۔k،l",
]


def component_json(kind, component):
    tok = Tokenizer(models.BPE())
    setattr(tok, kind, component)
    return json.loads(tok.to_str())[kind]


def component_cases():
    """Single normalizers, pre-tokenizers and decoders run on their own by HF tokenizers."""
    bloom = pre_tokenizers.Split(Regex(BLOOM_SPLIT), behavior="isolated", invert=False)
    pre = [pre_tokenizers.Split(Regex("a*"), behavior="isolated"), bloom,
           pre_tokenizers.Split(Regex("\\s+"), behavior="removed", invert=True)]
    pre += [pre_tokenizers.Split("-", behavior=b) for b in
            ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous")]
    pre += [pre_tokenizers.ByteLevel(add_prefix_space=a, use_regex=r) for a in (False, True) for r in (False, True)]
    pre += [pre_tokenizers.Metaspace(prepend_scheme=p, split=sp) for p in ("always", "first", "never")
            for sp in (False, True)]
    pre += [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.Whitespace(), pre_tokenizers.WhitespaceSplit()]
    pre += [pre_tokenizers.Punctuation(behavior=b) for b in ("isolated", "contiguous", "removed")]
    pre.append(pre_tokenizers.Sequence([pre_tokenizers.Punctuation(behavior="contiguous"),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                        pre_tokenizers.Digits(individual_digits=False),
                                        pre_tokenizers.Split(Regex("[0-9][0-9][0-9]"), behavior="isolated")]))
    norm = [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁"), normalizers.Replace(Regex("\\s+"), " "),
            normalizers.Strip(left=True, right=False), normalizers.Strip(left=False, right=True), normalizers.Strip(),
            normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])]
    token_lists = [
        [], ["Ġ"], ["Hello", "Ġworld"], ["Ã", "©", "t", "Ã", "©"], ["ð", "Ł", "¦", "Ļ"], ["ð", "Ł", "A"],
        ["hello world", "Ġx"], ["▁Hello", "▁world", "▁▁x"], ["Hello▁▁", "▁"], ["<0xE4>", "<0xBD>", "<0xA0>", "x"],
        ["<0xE4>", "<0xBD>", "y", "<0x41>"], ["<0x+A>", "<0xzz>", "<0x0A>"],
        ["  a  ", "  ", "b"],  # a token " " or "" makes HF's Strip(1, 1) panic
    ]
    dec = [decoders.ByteLevel(), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1, right=1),
           decoders.Replace("▁", " "), decoders.Metaspace(prepend_scheme="always"),
           decoders.Metaspace(prepend_scheme="first"), decoders.Metaspace(prepend_scheme="never"),
           decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                              decoders.Strip(content=" ", left=1, right=0)])]
    return {
        "texts": COMPONENT_TEXTS,
        "pre_tokenizers": [{"json": component_json("pre_tokenizer", p),
                            "pieces": [[piece for piece, _ in p.pre_tokenize_str(t)] for t in COMPONENT_TEXTS]}
                           for p in pre],
        "normalizers": [{"json": component_json("normalizer", n),
                         "normalized": [n.normalize_str(t) for t in COMPONENT_TEXTS]} for n in norm],
        "token_lists": token_lists,
        "decoders": [{"json": component_json("decoder", d), "decoded": [d.decode(t) for t in token_lists]}
                     for d in dec],
    }


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (what nlohmann::json::merge_patch does on the C++ side)."""
    if not isinstance(patch, dict):
        return patch
    target = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def bloom_variants(bloom_file):
    """The BLOOM-style file with one part changed (as a merge patch): other post-processors, ignore_merges."""
    def post(processor):
        return {"post_processor": component_json("post_processor", processor)}
    patches = [
        {"model": {"ignore_merges": True}},
        post(processors.BertProcessing(("</s>", 2), ("<s>", 1))),
        post(processors.RobertaProcessing(("</s>", 2), ("<s>", 1))),
        post(processors.TemplateProcessing(single="<s> $A </s> </s>", special_tokens=[
            {"id": "<s>", "ids": [1, 3], "tokens": ["<s>", "<pad>"]}, ("</s>", 2)])),
        post(processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                  processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])])),
    ]
    base = json.loads(bloom_file.read_text(encoding="utf-8"))
    out = []
    for patch in patches:
        tok = Tokenizer.from_str(json.dumps(merge_patch(base, patch)))
        out.append({"patch": patch, "ids": [tok.encode(t).ids for t in TEXTS],
                    "ids_plain": [tok.encode(t, add_special_tokens=False).ids for t in TEXTS]})
    return out


def hf_cases(tok, texts):
    cases = []
    for text in texts:
        with_special = tok.encode(text, add_special_tokens=True).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        cases.append({"ids": with_special, "ids_plain": plain,
                      "decoded": tok.decode(with_special, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True)})
    return cases


def hf_short_cases(tok, texts):
    """Ids with special tokens and the decoding without them (enough to pin everything, at a third of the size)."""
    out = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        out.append({"ids": ids, "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return out


def fnv1a64(ids, state=0xcbf29ce484222325):
    """FNV-1a over the ids as little-endian int32 bytes (tests/fixtures/tokenizer_*.cpp computes the same)."""
    for i in ids:
        for byte in int(i).to_bytes(4, "little", signed=True):
            state ^= byte
            state = (state * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return state


def alpaca_checksums(encoders, fixtures):
    """Per Alpaca file and tokenizer: token count and FNV-1a of all ids (each non-empty field, no special tokens)."""
    out = {}
    folder = fixtures / "alpaca-multilingual"
    for lang in ["en", "fr", "ru", "zh"]:
        records = json.loads((folder / f"{lang}.json").read_text(encoding="utf-8"))
        digest = hashlib.sha256((folder / f"{lang}.json").read_bytes()).hexdigest()
        entry = {"sha256": digest, "records": len(records)}
        for name, encode in encoders.items():
            state, count = 0xcbf29ce484222325, 0
            for record in records:
                for field in ("instruction", "input", "output"):
                    if record[field]:
                        ids = encode(record[field])
                        state = fnv1a64(ids, state)
                        count += len(ids)
            entry[name] = {"tokens": count, "fnv1a64": f"{state:016x}"}
        out[lang] = entry
    return out


def write_json(path, data):
    """Indented JSON with lists of integers on one line."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", default=str(ROOT.parent / "shared" / "fixtures"))
    args = parser.parse_args()
    versions = check_versions()
    fixtures = pathlib.Path(args.fixtures)
    OUT.mkdir(parents=True, exist_ok=True)

    trained = {"bloom_style": train_bloom_style(), "llama_style": train_llama_style(),
               "llama_legacy": train_llama_legacy(), "bpe_unk": train_bpe_unk()}
    golden = {"versions": versions, "texts": TEXTS, "special_texts": SPECIAL_TEXTS, "random_texts": RANDOM_TEXTS,
              "tokenizer_json": {},
              "components": component_cases()}
    for name, tok in trained.items():
        file = f"{name}.tokenizer.json"
        tok.save(str(OUT / file))
        tok = Tokenizer.from_file(str(OUT / file))   # what the C++ side reads
        golden["tokenizer_json"][name] = {"file": file, "vocab_size": tok.get_vocab_size(with_added_tokens=True),
                                          "texts": hf_cases(tok, TEXTS), "special_texts": hf_cases(tok, SPECIAL_TEXTS),
                                          "random_texts": hf_short_cases(tok, RANDOM_TEXTS)}

    golden["bloom_variants"] = bloom_variants(OUT / "bloom_style.tokenizer.json")

    if fixtures.is_dir():
        model = fixtures / "llama2-tokenizer" / "tokenizer.model"
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(model, pathlib.Path(tmp) / "tokenizer.model")
            hf = transformers.LlamaTokenizerFast.from_pretrained(tmp, add_bos_token=True).backend_tokenizer
        spm = sentencepiece.SentencePieceProcessor(model_file=str(model))
        tok512 = sentencepiece.SentencePieceProcessor(model_file=str(fixtures / "stories260K" / "tok512.model"))

        def spm_cases(processor, texts):
            return [{"ids": processor.encode(t), "decoded": processor.decode(processor.encode(t))} for t in texts]

        golden["llama2_tokenizer_model"] = {
            "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "transformers": {"texts": hf_cases(hf, TEXTS), "special_texts": hf_cases(hf, SPECIAL_TEXTS),
                             "random_texts": hf_short_cases(hf, RANDOM_TEXTS)},
            "sentencepiece": {"texts": spm_cases(spm, TEXTS), "random_texts": spm_cases(spm, RANDOM_TEXTS)},
        }
        golden["tok512_model"] = {"sentencepiece": {"texts": spm_cases(tok512, TEXTS),
                                                    "random_texts": spm_cases(tok512, RANDOM_TEXTS)}}
        reloaded = {name: Tokenizer.from_file(str(OUT / f"{name}.tokenizer.json")) for name in ("bloom_style",
                                                                                                  "llama_style")}
        golden["alpaca_checksums"] = alpaca_checksums({
            "bloom_style": lambda t: reloaded["bloom_style"].encode(t, add_special_tokens=False).ids,
            "llama_style": lambda t: reloaded["llama_style"].encode(t, add_special_tokens=False).ids,
            "llama2_transformers": lambda t: hf.encode(t, add_special_tokens=False).ids,
            "llama2_sentencepiece": lambda t: spm.encode(t),
        }, fixtures)
    else:
        print(f"warning: {fixtures} is absent; cases.json has no entries for the fixtures' tokenizers", file=sys.stderr)

    write_json(OUT / "cases.json", golden)
    tokenizer_unicode_golden.write(OUT, corpus_lines, versions)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
