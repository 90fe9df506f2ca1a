#!/usr/bin/env python3
"""The HF transformers peer for `unigemma bench --device cuda` (issue 4): the same checkpoint folder, bf16,
sdpa attention, on the same GPU in the same run. Prints prefill tokens/s per prompt length and eager greedy
decode tokens/s at batch 1 (and --batch sizes), in the table shape `unigemma bench` prints.

Usage: python3 scripts/bench/hf_peer.py MODEL_DIR [--prompts 512,2048] [--decode 32] [--batch 1,32] [--compile]
--compile adds the strong peer: static cache + torch.compile for decode (minutes of compile time)."""
import argparse
import json
import time

import torch
import transformers


def load(model_dir):
    arch = json.load(open(f"{model_dir}/config.json"))["architectures"][0]
    cls = getattr(transformers, arch)
    model = cls.from_pretrained(model_dir, dtype=torch.bfloat16, device_map="cuda", attn_implementation="sdpa")
    return model.eval()


def timed(fn, reps):
    out = []
    for r in range(reps + 1):  # first = warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        if r:
            out.append(time.perf_counter() - t0)
    return sum(out) / len(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompts", default="512,2048")
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--batch", default="1")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")
    model = load(a.model)
    gen = torch.Generator().manual_seed(42)
    print("| test                 |          t/s | peer                         |")
    print("|----------------------|--------------|------------------------------|")
    with torch.inference_mode():
        for p in [int(x) for x in a.prompts.split(",") if x]:
            ids = torch.randint(10, 200000, (1, p), generator=gen).cuda()
            s = timed(lambda: model(input_ids=ids, logits_to_keep=1, use_cache=False), a.reps)
            print(f"| pp{p:<18} | {p / s:12.1f} | HF bf16 sdpa                 |", flush=True)
        for b in [int(x) for x in a.batch.split(",") if x]:
            ids = torch.randint(10, 200000, (b, 16), generator=gen).cuda()
            kw = dict(do_sample=False, min_new_tokens=a.decode, max_new_tokens=a.decode)
            if a.compile:
                kw.update(cache_implementation="static", compile_config=None)
            base = timed(lambda: model.generate(ids, **dict(kw, min_new_tokens=1, max_new_tokens=1)), 1)
            full = timed(lambda: model.generate(ids, **kw), 1)
            tps = b * (a.decode - 1) / max(full - base, 1e-9)
            peer = "HF static+compile" if a.compile else "HF eager"
            print(f"| tg{a.decode} b{b:<14} | {tps:12.1f} | {peer:<28} |", flush=True)
    print(f"peak memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
