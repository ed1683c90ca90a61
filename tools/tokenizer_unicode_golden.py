"""The Unicode part of tools/make_tokenizer_golden.py (which calls write()): HF tokenizers' normalizers and
pre-tokenizers that work on Unicode properties, run alone and together on texts full of hard cases, a precompiled
SentencePiece charsmap, and a SentencePieceBPETokenizer (NFKC) trained on the corpus.

Writes, next to cases.json:
  unicode_cases.json              texts; per normalizer normalize_str, per pre-tokenizer pre_tokenize_str, per
                                  (normalizer, pre-tokenizer) pair the pieces a whole encode cuts (at_origin matters
                                  there), and the SentencePieceBPETokenizer's ids and decodings
  sentencepiece_bpe.tokenizer.json  that tokenizer (BPE, NFKC, Metaspace)

The Precompiled charsmap is a real one, built by sentencepiece itself: the nmt_nfkc rules (decoded from the
charsmap sentencepiece compiles for them) whose keys use only characters of the texts, compiled again by training
with normalization_rule_tsv. On these texts it rewrites exactly as the whole nmt_nfkc map (240 KB) does: a key
matches only text made of its characters, and every prefix of a kept key is kept.
"""

import io
import json
import re
import struct
import tempfile

import sentencepiece
import tokenizers
import transformers.convert_slow_tokenizer
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

TEXTS = [
    "", " ", "  ", "Hello World! HELLO world", "  leading and trailing  ", "Hello,  world!\tHow are\n\nyou?",
    "Der schnelle braune Fuchs. Führer, Straße, Größe, STRASSE", "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Быстрая коричневая лиса. ЁЛКА ёлка", "¿Por qué el cielo es azul? ¡Mañana!", "Où est l'été ? Crème brûlée, ÉCOLE",
    "Tiếng Việt có dấu: Cửa Việt", "तेज़ भूरी लोमड़ी। क़ ख़ ग़ क्या?", "素早い茶色の狐がのろまな犬を飛び越える。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다.", "Zażółć gęślą jaźń. Ελληνικά γράμματα. עברית. العربية، نعم۔",
    "ภาษาไทย สวัสดีครับ", "שָׁלוֹם עֲלֵיכֶם", "العَرَبِيَّة ﻻ ﷺ ﷽", "敏捷的棕色狐狸。为什么？",
    # ligatures and compatibility forms; full-width and half-width forms
    "ﬁnance ﬂow ﬀ ﬃ ﬆ Ⅻ ⅷ ① ⑳ ㎏ ㍿ ™ ℃ ½ x² H₂O ſ …",
    "ＡＢＣ　ａｂｃ１２３！？（）［］ｶﾀｶﾅ ｶﾞｷﾞ ﾊﾟ",
    # Hangul: syllables, conjoining jamo (NFC composes them), compatibility jamo (NFKC maps them)
    "한국어 \u1100\u1161\u11a8\u1112\u1161\u11ab ㅎㅏㄴ \u110b\u1173\u11af \u1100\u1161 각",
    # combining marks out of canonical order, a leading mark, singletons
    "a\u0301\u0316 a\u0316\u0301 q\u0307\u0323 q\u0323\u0307 e\u0323\u0302 e\u0302\u0323 \u1e9b\u0323",
    "e\u0301te\u0301 vs été; n\u0303 vs ñ; A\u030a vs Å vs \u212b; \u2126 \u0344",
    # case: U+0130, dotless i, titlecase digraphs, capital sharp s, final sigma (no context in HF)
    "İstanbul İİ iI ıI ǅǄǆ ǲ ẞß ŉ ǰ ΐ",
    "ΟΔΥΣΣΕΥΣ ὈΔΥΣΣΕΎΣ Σ ΣΑΣ σς ΌΣΟΣ",
    "中文漢字 𠜎𠜱𠝹 㐀 豈 丽 ⺠ ⼀ 〇",
    "ひらがな カタカナー ガ カ\u3099 ゟ ヿ ｰ 日本語のテキスト",
    "👩🏽\u200d💻 👨\u200d👩\u200d👧 🏳️\u200d🌈 👍🏿 🇳🇴🇯🇵 😶\u200d🌫️ ❤️ 1️⃣",
    "a\x01b\x07c\x1bd\x7fe\x85f\u200bg\u200dh\ufeffi\u00adj\x0bk\x0cl\x8fm\x9fn",
    "nul\u0000char\u0000", "\ufffd replacement \ufffd\ufffd", "\ue000private\U000f0000use",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideo\u2028ls\u1680ogham\u2581",
    "▁already▁meta spaced ▁",
    "Hello世界123こんにちはカタカナー한국어Привет αβγ 😀 ok",
    " leading space then ЖЖ", "\x01abc", "\u0301abc", "\ufeffabc", "\u3000ＡＢＣ", "İ", "ß",
    # characters newer than the Unicode versions of HF's Rust crates (their tables leave them alone)
    "new: 🥱 🫠 ㋿ \U00011935\U00011930 \U00011938 \u0378 ꟲ \u08e2 \u166d \u1885",
    "3 333 4444 ½ ² ٣ 12.5% $4,000 «Quoi ?» (a) [b] {c} a.b,c!d?e…f。g，h、i।j۔k،l",
    "the-final--countdown --a--",
]

# Texts for whole encodes: mostly ones whose first characters a normalizer drops or rewrites (at_origin).
PIPELINE_TEXTS = [
    "", " ", "  leading and trailing  ", " leading space then ЖЖ", "\x01abc", "\x85abc", "\u0000abc", "\u0301abc",
    "\ufeffabc", "\u200babc", "\u3000ＡＢＣ", "ﬁ ﬁnance", "İ", "\ufffd replacement \ufffd",
    "Hello,  world!\tHow are\n\nyou?", "Où est l'été ? Crème brûlée, ÉCOLE", "中文漢字 𠜎 豈",
    "Hello世界123こんにちはカタカナー한국어Привет αβγ 😀 ok", "a\x01b\x07c\x1bd\x7fe\x85f\u200bg\u200dh\ufeffi",
]

# Words for the SentencePiece model the charsmap comes from (only its normalizer is used).
SPM_CORPUS = ["The quick brown fox", "jumps over the lazy dog", "Hello world"] * 30


def charsmap_rules(blob):
    """Every (key, value) of a precompiled charsmap: a walk over its Darts double-array trie."""
    (trie_bytes,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    strings = blob[4 + trie_bytes // 4 * 4:]
    offset = lambda u: (u >> 10) << ((u & (1 << 9)) >> 6)  # noqa: E731
    rules = {}

    def walk(node, key):
        for byte in range(1, 256):
            child = node ^ byte
            if child >= len(units) or (units[child] & 0x800000FF) != byte:
                continue
            below = child ^ offset(units[child])
            if (units[child] >> 8) & 1:
                value = units[below] & 0x7FFFFFFF
                rules[bytes(key + [byte]).decode()] = strings[value:strings.index(b"\0", value)].decode()
            walk(below, key + [byte])

    walk(offset(units[0]), [])
    return rules


def spm_model(**normalization):
    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(SPM_CORPUS), model_writer=out, vocab_size=40,
                                             hard_vocab_limit=False, minloglevel=2, **normalization)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(out.getvalue())
    return proto


def small_nmt_nfkc_model(texts):
    """A SentencePiece model whose charsmap holds the nmt_nfkc rules that can apply to `texts`."""
    full = charsmap_rules(spm_model(normalization_rule_name="nmt_nfkc").normalizer_spec.precompiled_charsmap)
    chars = set("".join(texts))
    kept = {key: value for key, value in full.items() if set(key) <= chars}
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", encoding="utf-8") as tsv:
        for key, value in sorted(kept.items()):
            tsv.write(" ".join(f"{ord(c):X}" for c in key) + "\t" + " ".join(f"{ord(c):X}" for c in value) + "\n")
        tsv.flush()
        proto = spm_model(normalization_rule_tsv=tsv.name)
    if charsmap_rules(proto.normalizer_spec.precompiled_charsmap) != kept:
        raise SystemExit("sentencepiece compiled the nmt_nfkc subset into a different charsmap")
    return proto


def component_json(kind, component):
    tok = Tokenizer(models.BPE())
    setattr(tok, kind, component)
    return json.loads(tok.to_str())[kind]


def pipeline_pieces(normalizer, pre_tokenizer, texts):
    """The pieces a whole encode cuts (normalizer, then pre-tokenizer with the pieces' original offsets): a BPE
    with one token per character and no merges, its tokens grouped by word."""
    chars = {"▁"} | set(pre_tokenizers.ByteLevel.alphabet())
    for text in texts:
        for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            chars |= set(piece)
    vocab = {c: i for i, c in enumerate(sorted(chars))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    out = []
    for text in texts:
        encoding = tok.encode(text)
        pieces = []
        for token, word in zip(encoding.tokens, encoding.word_ids):
            if word == len(pieces):
                pieces.append("")
            pieces[word] += token
        out.append(pieces)
    return out


def train_sentencepiece_bpe(corpus_lines):
    tok = tokenizers.SentencePieceBPETokenizer()
    tok.train_from_iterator(corpus_lines(), vocab_size=400, special_tokens=["<unk>"], show_progress=False)
    return Tokenizer.from_str(tok.to_str())


def dumps(golden):
    """Indented JSON, with each list of pieces and of ids on one line."""
    lines = []

    def one_line(value):
        lines.append(json.dumps(value, ensure_ascii=False))
        return f"@@{len(lines) - 1}@@"

    for entry in golden["pre_tokenizers"] + golden["pipelines"]:
        entry["pieces"] = [one_line(pieces) for pieces in entry["pieces"]]
    golden["sentencepiece_bpe"]["ids"] = [one_line(ids) for ids in golden["sentencepiece_bpe"]["ids"]]
    text = json.dumps(golden, ensure_ascii=False, indent=1)
    return re.sub(r'"@@(\d+)@@"', lambda m: lines[int(m.group(1))], text) + "\n"


def write(out_dir, corpus_lines, versions):
    """Writes sentencepiece_bpe.tokenizer.json and unicode_cases.json into out_dir."""
    precompiled_proto = small_nmt_nfkc_model(TEXTS + PIPELINE_TEXTS)
    precompiled = normalizers.Precompiled(precompiled_proto.normalizer_spec.precompiled_charsmap)
    converted = transformers.convert_slow_tokenizer.SpmConverter.normalizer(None, precompiled_proto)
    bert_style = tokenizers.BertWordPieceTokenizer()
    unigram_style = tokenizers.SentencePieceUnigramTokenizer()
    bert = normalizers.BertNormalizer
    norm = [normalizers.NFC(), normalizers.NFD(), normalizers.NFKC(), normalizers.NFKD(), normalizers.Lowercase(),
            normalizers.StripAccents(), normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()]),
            normalizers.Nmt(), normalizers.ByteLevel(), bert(),
            bert(clean_text=False, handle_chinese_chars=False, strip_accents=None, lowercase=False),
            bert(clean_text=True, handle_chinese_chars=False, strip_accents=True, lowercase=False),
            bert(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=True),
            precompiled, unigram_style.normalizer,
            normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])]
    pre = [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.CharDelimiterSplit("-"),
           pre_tokenizers.CharDelimiterSplit("▁"), pre_tokenizers.UnicodeScripts(),
           pre_tokenizers.FixedLength(length=4), pre_tokenizers.FixedLength(),
           pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.UnicodeScripts()])]
    first = pre_tokenizers.Metaspace(prepend_scheme="first")
    pairs = [(bert_style.normalizer, bert_style.pre_tokenizer), (unigram_style.normalizer,
                                                                  unigram_style.pre_tokenizer),
             (normalizers.NFKC(), first), (normalizers.Lowercase(), first), (normalizers.StripAccents(), first),
             (normalizers.Nmt(), first), (bert(), first), (normalizers.ByteLevel(), first), (converted, first),
             (normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]),
              pre_tokenizers.Sequence([pre_tokenizers.UnicodeScripts(), first])),
             (normalizers.Strip(), pre_tokenizers.Sequence([pre_tokenizers.FixedLength(length=3), first]))]

    sp_bpe = train_sentencepiece_bpe(corpus_lines)
    sp_bpe.save(str(out_dir / "sentencepiece_bpe.tokenizer.json"))
    sp_bpe = Tokenizer.from_file(str(out_dir / "sentencepiece_bpe.tokenizer.json"))  # what the C++ side reads
    golden = {
        "versions": versions,
        "texts": TEXTS,
        "pipeline_texts": PIPELINE_TEXTS,
        "normalizers": [{"json": component_json("normalizer", n), "normalized": [n.normalize_str(t) for t in TEXTS]}
                        for n in norm],
        "pre_tokenizers": [{"json": component_json("pre_tokenizer", p),
                            "pieces": [[piece for piece, _ in p.pre_tokenize_str(t)] for t in TEXTS]} for p in pre],
        "pipelines": [{"normalizer": component_json("normalizer", n), "pre_tokenizer": component_json("pre_tokenizer", p),
                       "pieces": pipeline_pieces(n, p, PIPELINE_TEXTS)} for n, p in pairs],
        "sentencepiece_bpe": {"file": "sentencepiece_bpe.tokenizer.json",
                              "ids": [sp_bpe.encode(t).ids for t in TEXTS],
                              "decoded_skip_special": [sp_bpe.decode(sp_bpe.encode(t).ids, skip_special_tokens=True)
                                                       for t in TEXTS]},
    }
    (out_dir / "unicode_cases.json").write_text(dumps(golden), encoding="utf-8")
