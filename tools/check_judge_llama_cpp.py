#!/usr/bin/env python3
"""Runs polyalpaca_judge end to end against a real OpenAI-compatible server: llama.cpp's, llama-cpp-python's
llama_cpp.server, on a loopback port, serving a model polyalpaca exported (stories260K with its tokenizer,
tests/fixtures/gguf_stories.cpp). The judge asks, the server answers, the judge parses; the run is killed half way
and started again, and must then ask only what has no score. A tiny story model's verdicts are nonsense (most
answers hold no score and are written as null): what this proves is the client against a real implementation of
the protocol, not the scores. Run by hand, never in CI.

Pinned versions (checked at runtime): llama-cpp-python==0.3.36 with its server extras

    /opt/pa-venv/bin/pip install "llama-cpp-python[server]==0.3.36" --no-binary llama-cpp-python
    POLYALPACA_GGUF_EXPORT_DIR=/tmp/gguf_export build/tests/fixtures_tests_0 "[gguf]"   # writes stories260K_F32.gguf
    /opt/pa-venv/bin/python tools/check_judge_llama_cpp.py /tmp/gguf_export/stories260K_F32.gguf
"""

import importlib.metadata
import json
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

PINNED = {"llama_cpp_python": "0.3.36"}
REPO = pathlib.Path(__file__).resolve().parent.parent
JUDGE = REPO / "build/examples/polyalpaca_judge"
RESPONSES = 24
# A short template: the story model's context is 512 tokens of a 512-piece vocabulary.
PROMPT = "{instruction}\n{response}\nScore (1-5):"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return json.load(reply)
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer {url} within {seconds} s")


def scores(path):
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(s["run"], s["language"], s["id"]): s for s in lines}


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for name, want in PINNED.items():
        if importlib.metadata.version(name) != want:
            raise SystemExit(f"{name} {importlib.metadata.version(name)} is installed, this check is pinned to {want}")
    model = pathlib.Path(sys.argv[1])
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                               "--port", str(port), "--n_ctx", "512", "--model_alias", "stories260K"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        models = wait_for(base + "/models", 60)
        work = pathlib.Path(tempfile.mkdtemp())
        responses, score_file, prompt = work / "responses.jsonl", work / "scores.jsonl", work / "prompt.txt"
        prompt.write_text(PROMPT)
        with responses.open("w") as f:
            for i in range(RESPONSES):
                f.write(json.dumps({"run": "stories", "language": "en", "id": str(i),
                                    "instruction": f"Tell a story about {i} cats.",
                                    "response": f"Once upon a time there were {i} cats."}) + "\n")
        command = [str(JUDGE), "--responses", str(responses), "--scores", str(score_file), "--base-url", base,
                   "--model", "stories260K", "--prompt", str(prompt), "--max-tokens", "24", "--keep-unparsable"]
        first = subprocess.Popen(command + ["--rpm", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        time.sleep(6)
        first.send_signal(signal.SIGKILL)
        first.wait()
        after_kill = scores(score_file) if score_file.exists() else {}
        second = subprocess.run(command, capture_output=True, text=True)
        if second.returncode != 0:
            raise SystemExit(f"the judge's second run failed:\n{second.stderr[-2000:]}")
        final = scores(score_file)
        numeric = sum(isinstance(s["score"], (int, float)) for s in final.values())
        summary = [line for line in second.stderr.splitlines() if line.strip() and "|" not in line]
        print(f"server: llama_cpp.server (llama-cpp-python {PINNED['llama_cpp_python']}) on 127.0.0.1:{port}, "
              f"model {models['data'][0]['id']} ({model.name})")
        print(f"first run killed after 6 s with {len(after_kill)} of {RESPONSES} scores written")
        print(f"second run: exit {second.returncode}; scores file holds {len(final)} of {RESPONSES} keys, "
              f"{numeric} with a number, {len(final) - numeric} null (no score in the answer)")
        print("judge summary of the second run:\n  " + "\n  ".join(summary[-12:]))
        example = next(iter(final.values()))
        print(f"one line: {json.dumps(example)[:300]}")
        if len(final) != RESPONSES or not 0 < len(after_kill) < RESPONSES:
            raise SystemExit("FAILED: the kill did not land half way, or the resumed run left keys without a line")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
