#!/usr/bin/env python3
"""The PyTorch peer of bench/cuda/train_step.cu (--device cuda) and bench/train_step.cpp (--device cpu): one
BLOOM-560m-architecture training step with transformers + PEFT.

BloomForCausalLM is built from a BloomConfig with BLOOM-560m's sizes (vocab 250880, hidden 1024, 24 layers, 16 heads)
and random weights, directly on the device; nothing is downloaded. Modes:
  lora  PEFT LoRA r=8, alpha=16, dropout 0.05 on query_key_value (the Alpaca-LoRA recipe), AdamW on the adapters
  full  every weight trains

Precision (--precision):
  autocast  fp32 weights, forward and backward under torch.autocast(bfloat16): what HF Trainer does with bf16=True,
            and what polyalpaca does in GemmMath::Bf16 (fp32 master weights, bf16 GEMM operands, fp32 accumulation;
            on the CPU through oneDNN, as polyalpaca's). The default, as the like-for-like comparison.
  fp32      fp32 everywhere (HF Trainer's default; polyalpaca's GemmMath::Fp32).
  bf16      the frozen base weights stored in bfloat16 (PEFT keeps the adapters in fp32), no autocast: the
            memory-lean way LoRA is often run; LoRA mode only.

Each step: zero_grad, forward with labels = input ids (HF shifts), backward, clip_grad_norm_(1.0) as HF Trainer,
torch.optim.AdamW(lr 1e-4, fused=True). Micro-batch 4 x 512 random tokens. Warm-up steps, then timed steps (between
torch.cuda.synchronize() calls on a GPU). Prints one JSON line: tokens/s, ms per step (mean, and the best step), on a
GPU torch.cuda.max_memory_allocated and max_memory_reserved, on the CPU the peak resident set, the attention
implementation used and the package versions.
"""
import argparse
import json
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["lora", "full"], default="lora")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU: torch.set_num_threads (0: torch's default)")
    p.add_argument("--precision", choices=["autocast", "fp32", "bf16"], default="autocast")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--attn", choices=["auto", "sdpa", "eager"], default="auto",
                   help="attention implementation; auto tries sdpa and falls back to eager when BLOOM lacks it")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def build_model(args, torch, transformers):
    config = transformers.BloomConfig(vocab_size=250880, hidden_size=1024, n_layer=24, n_head=16,
                                      hidden_dropout=0.0, attention_dropout=0.0)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    dtype_keys = ["dtype", "torch_dtype"]  # transformers >= 4.56 takes dtype; older ones only torch_dtype
    tries = ["sdpa", "eager"] if args.attn == "auto" else [args.attn]
    last_error = None
    for attn in tries:
        for key in dtype_keys:
            try:
                with torch.device(args.device):
                    model = transformers.BloomForCausalLM._from_config(config, attn_implementation=attn, **{key: dtype})
                if next(model.parameters()).dtype != dtype:
                    model = model.to(dtype)
                return model, getattr(model.config, "_attn_implementation", attn)
            except TypeError as e:
                last_error = e
            except (ValueError, ImportError) as e:
                print(f"peft_train_step.py: attention '{attn}' unavailable for BLOOM: {e}", file=sys.stderr)
                last_error = e
                break
    raise SystemExit(f"peft_train_step.py: no attention implementation of {tries} works for BLOOM: {last_error}")


def main():
    args = parse_args()
    if args.precision == "bf16" and args.mode == "full":
        raise SystemExit("peft_train_step.py: --precision bf16 is for LoRA (full training keeps fp32 master weights)")
    import torch
    import transformers
    import peft

    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("peft_train_step.py: no CUDA device", file=sys.stderr)
        sys.exit(77)
    if device == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 matmuls stay fp32 outside autocast, as in polyalpaca

    model, attn_used = build_model(args, torch, transformers)
    if args.mode == "lora":
        lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query_key_value"],
                               bias="none", task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01, fused=True)

    g = torch.Generator(device=device).manual_seed(args.seed)
    ids = torch.randint(0, 250880, (args.batch, args.seq), device=device, generator=g)
    use_autocast = args.precision == "autocast"

    losses = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=use_autocast):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        losses.append(out.loss.detach())

    def synchronize():
        if device == "cuda":
            torch.cuda.synchronize()

    synchronize()
    for _ in range(args.warmup):
        step()
    synchronize()
    t0 = time.perf_counter()
    best = float("inf")
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        synchronize()
        best = min(best, time.perf_counter() - t)
    seconds = (time.perf_counter() - t0) / args.steps
    tokens = args.batch * args.seq
    if device == "cuda":
        memory = {"max_memory_allocated": torch.cuda.max_memory_allocated(),
                  "max_memory_reserved": torch.cuda.max_memory_reserved(),
                  "device": torch.cuda.get_device_name(), "cuda": torch.version.cuda}
    else:
        import resource
        memory = {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "device": "cpu", "threads": torch.get_num_threads()}
    print(json.dumps({
        "peer": "transformers+peft",
        "mode": args.mode,
        "precision": args.precision,
        "attention": attn_used,
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "ms_per_step": round(seconds * 1e3, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "best_ms": round(best * 1e3, 3),
        "best_tokens_per_s": round(tokens / best, 1),
        **memory,
        "parameters": n_total,
        "trainable": n_trainable,
        "first_loss": round(float(losses[0]), 4),
        "last_loss": round(float(losses[-1]), 4),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
