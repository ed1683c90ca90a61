#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets added on 2026-12-07 (run from the repository root):
tokenizer.json files cut down from tests/golden/data/tokenizers, PEFT adapters from tests/golden/data/models/*-lora,
and small hand-made files of every other format. Standard library only; the output is deterministic."""
import json
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 64 * 1024, (target, name, len(data))
    (d / name).write_bytes(data)


TOKENIZERS = ROOT / "tests" / "golden" / "data" / "tokenizers"


def cut_tokenizer(name):
    """The golden tokenizer.json `name` with the vocabulary cut to its first 160 tokens (merges of those only)."""
    j = json.loads((TOKENIZERS / f"{name}.tokenizer.json").read_text())
    m = j["model"]
    keep = {t: i for t, i in m["vocab"].items() if i < 160}
    m["vocab"] = keep
    merges = []
    for mg in m.get("merges", []):
        a, b = mg if isinstance(mg, list) else mg.split(" ", 1)
        if a in keep and b in keep and a + b in keep:
            merges.append(mg)
    m["merges"] = merges
    j["added_tokens"] = [t for t in j.get("added_tokens", []) if t["id"] < 160]
    return j


def tokenizer_json():
    for name in ["llama_style", "llama_legacy", "bloom_style", "bpe_unk"]:
        j = cut_tokenizer(name)
        put("tokenizer_json", f"{name}.json", json.dumps(j, ensure_ascii=False, indent=1))
        if name == "bpe_unk":
            # The Unicode normalizers and pre-tokenizers, all in one file (unicode_cases.json has their JSON).
            cases = json.loads((TOKENIZERS / "unicode_cases.json").read_text())
            j["normalizer"] = {"type": "Sequence", "normalizers": [n["json"] for n in cases["normalizers"]]}
            j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [p["json"] for p in cases["pre_tokenizers"]]}
            put("tokenizer_json", "unicode_components.json", json.dumps(j, ensure_ascii=False, indent=1))


def length_prefixed(*files):
    """Files joined as fuzz/temp_file.hpp's length_prefixed_parts splits them: each but the last after its length."""
    out = b""
    for f in files[:-1]:
        f = f.encode() if isinstance(f, str) else f
        out += struct.pack("<I", len(f)) + f
    last = files[-1]
    return out + (last.encode() if isinstance(last, str) else last)


def gguf_vocabulary():
    """A tokenizer's directory as the GGUF export reads it: tokenizer.json, tokenizer_config.json, chat_template.json,
    config.json (an empty part is an absent file)."""
    alpaca = ("{% for m in messages %}{% if m['role'] == 'user' %}### Instruction:\n{{ m['content'] }}\n\n"
              "### Response:\n{% else %}{{ m['content'] }}{% endif %}{% endfor %}")
    bloom = json.dumps(cut_tokenizer("bloom_style"), ensure_ascii=False)
    llama = json.dumps(cut_tokenizer("llama_style"), ensure_ascii=False)
    legacy = json.dumps(cut_tokenizer("llama_legacy"), ensure_ascii=False)
    put("gguf_vocabulary", "bloom_config_ids.bin", length_prefixed(
        bloom, json.dumps({"bos_token": "<s>", "eos_token": {"content": "</s>", "special": True},
                           "pad_token": "<pad>", "add_bos_token": False, "add_eos_token": True}),
        "", json.dumps({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3})))
    put("gguf_vocabulary", "llama_chat_template.bin", length_prefixed(
        llama, json.dumps({"bos_token": "<s>", "unk_token": "<unk>", "chat_template": alpaca}), "", ""))
    put("gguf_vocabulary", "legacy_template_file.bin", length_prefixed(
        legacy, "", json.dumps({"chat_template": alpaca}), json.dumps({"eos_token_id": 2})))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 5:
        return key + payload
    return key + varint(len(payload)) + payload


SP_PIECES = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [
    "\u2581", "\u2581H", "el", "lo", "\u2581w", "or", "ld", "\u2581Hel", "\u2581Hello", "\u2581wor", "\u2581world", "!",
    "1", "2", "3", "?", "\u00c7", "a", "v", "e", "l", "o", "r", "d", "w", "x", "s", "<", ">", "\u2581\u00c7a"]


def sp_model(pieces, byte_fallback=True, normalizer="identity", model_type=2, extra_norm=b""):
    out = bytearray()
    for i, p in enumerate(pieces):
        t = 2 if p == "<unk>" else 3 if p in ("<s>", "</s>") else 6 if p.startswith("<0x") else 1
        out += field(1, 2, field(1, 2, p.encode()) + field(2, 5, struct.pack("<f", -float(i))) + field(3, 0, t))
    trainer = field(3, 0, model_type) + field(35, 0, int(byte_fallback)) + field(45, 2, b"<unk>")
    out += field(2, 2, trainer)
    norm = field(1, 2, normalizer.encode()) + field(3, 0, 1) + field(4, 0, 0) + field(5, 0, 1) + extra_norm
    out += field(3, 2, norm)
    return bytes(out)


def sentencepiece_model():
    put("sentencepiece_model", "bpe_byte_fallback.model", sp_model(SP_PIECES))
    put("sentencepiece_model", "bpe_no_bytes.model",
        sp_model([p for p in SP_PIECES if not p.startswith("<0x")], byte_fallback=False))
    put("sentencepiece_model", "unigram.model", sp_model(SP_PIECES[:40], model_type=1))


def llama2c_tokenizer(pieces):
    raw = [f"\n{p}\n".encode() if p in ("<s>", "</s>") else p.replace("\u2581", " ").encode() for p in pieces]
    out = bytearray(struct.pack("<i", max(len(b) for b in raw)))
    for i, b in enumerate(raw):
        out += struct.pack("<fi", -float(i), len(b)) + b
    return bytes(out)


def llama2c_checkpoint(version, dim=8, hidden=16, layers=1, heads=2, kv_heads=1, vocab=32, seq=4, shared=True,
                       group=4):
    head = dim // heads
    kv = kv_heads * head
    if version == 0:
        hdr = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq)
        n = vocab * dim + layers * (dim + dim * dim + kv * dim * 2 + dim * dim + dim + 3 * hidden * dim) + dim
        n += 2 * seq * (head // 2)
        if not shared:
            n += vocab * dim
        return hdr + struct.pack(f"<{n}f", *[((i % 7) - 3) / 8 for i in range(n)])
    hdr = struct.pack("<Ii7iB", 0x616B3432, version, dim, hidden, layers, heads, kv_heads, vocab, seq, int(shared))
    if version == 2:
        hdr += struct.pack("<i", group)
    hdr += b"\0" * (256 - len(hdr))
    norms = layers * 2 * dim + dim
    big = vocab * dim + layers * (2 * dim * dim + 2 * kv * dim + 3 * hidden * dim)
    if not shared:
        big += vocab * dim
    if version == 1:
        return hdr + struct.pack(f"<{norms + big}f", *[((i % 7) - 3) / 8 for i in range(norms + big)])
    return (hdr + struct.pack(f"<{norms}f", *[1.0] * norms) + bytes((i * 37) % 256 for i in range(big)) +
            struct.pack(f"<{big // group}f", *[0.01] * (big // group)))


def llama2c():
    tok = llama2c_tokenizer(["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] +
                            ["\u2581", "\u2581H", "el", "lo", "\u2581Hello", "\u2581world", "!", "a", "o"])
    small_tok = llama2c_tokenizer(["<unk>", "<s>", "</s>", "\u2581", "a", "b", "\u2581a", "ab"])
    for name, ckpt, t in [("v0_shared", llama2c_checkpoint(0), tok),
                          ("v0_own_classifier", llama2c_checkpoint(0, shared=False), small_tok),
                          ("v1", llama2c_checkpoint(1), small_tok),
                          ("v2_q8", llama2c_checkpoint(2, shared=False), tok)]:
        put("llama2c", f"{name}.bin", struct.pack("<I", len(ckpt)) + ckpt + t)


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors, version=3, alignment=32):
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)))
    for key, typ, val in kvs:
        out += gstr(key) + struct.pack("<I", typ) + val
    data = bytearray()
    infos = bytearray()
    for name, gtype, dims, raw in tensors:
        while len(data) % alignment:
            data += b"\0"
        infos += gstr(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        infos += struct.pack("<IQ", gtype, len(data))
        data += raw
    out += infos
    while len(out) % alignment:
        out += b"\0"
    return bytes(out + data)


def garr(elem, items):
    enc = {8: gstr, 6: lambda x: struct.pack("<f", x), 5: lambda x: struct.pack("<i", x)}[elem]
    return struct.pack("<IQ", elem, len(items)) + b"".join(enc(x) for x in items)


def gguf_seeds():
    u32 = lambda x: struct.pack("<I", x)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [
        "\u2581", "\u2581H", "el", "lo", "\u2581Hello", "\u2581world", "!", "a", "o"]
    types = [2, 3, 3] + [6] * 256 + [1] * 9
    llama_vocab = [
        ("tokenizer.ggml.model", 8, gstr("llama")),
        ("tokenizer.ggml.tokens", 9, garr(8, tokens)),
        ("tokenizer.ggml.scores", 9, garr(6, [-float(i) for i in range(len(tokens))])),
        ("tokenizer.ggml.token_type", 9, garr(5, types)),
        ("tokenizer.ggml.bos_token_id", 4, u32(1)),
        ("tokenizer.ggml.eos_token_id", 4, u32(2)),
        ("tokenizer.ggml.unknown_token_id", 4, u32(0)),
        ("tokenizer.ggml.add_space_prefix", 7, b"\1"),
    ]
    f32 = struct.pack("<8f", *[i / 4 for i in range(8)])
    f16 = struct.pack("<8e", *[i / 4 for i in range(8)])
    bf16 = b"".join(struct.pack("<f", i / 4)[2:] for i in range(8))
    tensors = [("token_embd.weight", 0, [4, 2], f32), ("blk.0.attn_q.weight", 1, [2, 4], f16),
               ("output_norm.weight", 30, [8], bf16)]
    put("gguf", "llama_vocab_tensors.gguf",
        gguf([("general.architecture", 8, gstr("llama")), ("general.alignment", 4, u32(32)),
              ("llama.context_length", 4, u32(64)), ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0))] +
             llama_vocab, tensors))
    bpe_tokens = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["\u0120", "\u0120w", "he", "ll", "llo", "<|endoftext|>"]
    put("gguf", "gpt2_vocab.gguf",
        gguf([("general.architecture", 8, gstr("gpt2")), ("tokenizer.ggml.model", 8, gstr("gpt2")),
              ("tokenizer.ggml.pre", 8, gstr("gpt-2")), ("tokenizer.ggml.tokens", 9, garr(8, bpe_tokens)),
              ("tokenizer.ggml.merges", 9, garr(8, ["\u0120 w", "h e", "l l", "ll o"])),
              ("tokenizer.ggml.bos_token_id", 4, u32(len(bpe_tokens) - 1))], [], version=2))
    put("gguf", "tensors_only_v3.gguf",
        gguf([("general.architecture", 8, gstr("llama")), ("general.name", 8, gstr("tiny")),
              ("some.u64", 10, struct.pack("<Q", 7)), ("some.f64", 12, struct.pack("<d", 0.5)),
              ("some.i64", 11, struct.pack("<q", -3))], tensors, alignment=32))


def alpaca():
    recs = [{"instruction": "Give three tips for staying healthy.", "input": "",
             "output": "1. Eat well.\n2. Exercise.\n3. Sleep."},
            {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
            {"instruction": "\u041f\u0440\u0438\u0432\u0435\u0442", "input": "\u4f60\u597d", "output": "\u00a1Hola!"}]
    put("alpaca", "array.json", json.dumps(recs, ensure_ascii=False, indent=2))
    put("alpaca", "lines.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    put("alpaca", "bad_records.jsonl",
        '\ufeff{"instruction": "ok", "input": "", "output": "fine"}\r\n\n{"instruction": 3}\n[1]\n{"output": "x"}\n'
        '{"instruction": "", "input": "", "output": ""}\n{"instruction": "a", "input": "b", "output": "c", "extra": 1}')
    put("alpaca", "bad_array.json", '[{"instruction": "a", "input": "", "output": "b"}, 7, {"instruction": null},'
        ' {"instruction": "x", "output": "y"}, "s" ,{}]')


def peft():
    src = ROOT / "tests" / "golden" / "data" / "models"
    for name in ["llama-lora", "llama_tied-lora", "bloom-lora", "llama-dora", "llama-ia3"]:
        config = (src / name / "adapter_config.json").read_bytes()
        weights = (src / name / "adapter_model.safetensors").read_bytes()
        if name in ["llama-lora", "llama_tied-lora", "bloom-lora"]:
            put("peft_config", f"{name}.bin", length_prefixed(config, weights))
        if name != "llama_tied-lora":
            put("peft_merge", f"{name}.bin", length_prefixed(config, weights))


def eval_jsonl():
    put("eval_jsonl", "test_set.jsonl",
        '{"id": "1", "prompt": "Name a color.", "input": ""}\n{"id": "2", "prompt": "Add 2 and 3.", "input": "2 3"}\n'
        '\n{"id": "2", "prompt": "repeat"}\n{"prompt": ""}\nnot json\n')
    put("eval_jsonl", "responses.jsonl",
        '{"id": "1", "language": "en", "instruction": "Name a color.", "input": "", "response": "Blue.", '
        '"run": "r1", "model": "m", "method": "lora", "strategy": "mono", "decoding": {"temperature": 0}}\n'
        '{"id": "2", "language": "en", "instruction": "Add.", "input": "2 3", "response": "5", "run": "r1"}\n')
    put("eval_jsonl", "scores.jsonl",
        '{"run": "r1", "language": "en", "id": "1", "score": 4, "raw": "Score: 4"}\n'
        '{"run": "r1", "language": "en", "id": "2", "score": null, "raw": "no idea"}\n'
        '{"run": "r1", "language": "en", "id": "1", "score": 5, "raw": "Score: 5"}\n{"run": "r1", "lang')


def judge_reply():
    def completion(content):
        return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "judge",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 3}})
    put("judge_reply", "score.json", completion("The answer is helpful.\nScore: 4"))
    put("judge_reply", "score_decimal.json", completion("**Score**: [4.5] out of 5"))
    put("judge_reply", "null_content.json", completion(None))
    put("judge_reply", "no_choices.json", json.dumps({"error": {"message": "overloaded"}}))
    put("judge_reply", "batch_output.jsonl",
        json.dumps({"id": "b1", "custom_id": "r1|en|1", "response": {"status_code": 200, "body": json.loads(
            completion("Score: 3"))}, "error": None}) + "\n" +
        json.dumps({"id": "b2", "custom_id": "r1|en|2", "response": None,
                    "error": {"message": "bad request"}}) + "\n")


if __name__ == "__main__":
    tokenizer_json()
    gguf_vocabulary()
    sentencepiece_model()
    llama2c()
    gguf_seeds()
    alpaca()
    peft()
    eval_jsonl()
    judge_reply()
