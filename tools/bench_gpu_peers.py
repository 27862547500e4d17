#!/usr/bin/env python3
"""Peers of `qllm bench --device cuda`: the same model directory run by Hugging Face transformers
in BF16, and by transformers + optimum-quanto with INT8 / INT4 weights, on the GPU.

    tools/bench_gpu_peers.py MODEL_DIR [--mode bf16|int8|int4|all] [--prompt 512] [--gen 128]

Measures, like qllm's CUDA bench: prompt speed (one forward of --prompt tokens, mean of 3 after a
warm-up), batch-1 greedy decode speed (generate() of --gen new tokens from a one-token prompt,
EOS disabled), and VRAM: bytes of the weights as loaded (torch.cuda.memory_allocated after
loading / quantizing) and the peak during the runs. quanto leaves lm_head in BF16 (its usual
exclude='lm_head'). Each mode runs in its own process so one failure (e.g. a quanto kernel
extension that cannot build) does not stop the others; one JSON line per mode on stdout.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def torch_unpack(packed, bits):
    import torch
    mask = (1 << bits) - 1
    return torch.cat([(packed >> (bits * k)) & mask for k in range(8 // bits)]).to(torch.uint8)


def import_quanto():
    # quanto's model wrapper imports helpers that newer transformers moved; supply them so the
    # import itself cannot fail (same shims as tools/golden/make_goldens.py).
    import transformers.modeling_utils as mu
    if not hasattr(mu, "load_state_dict"):
        from safetensors.torch import load_file
        mu.load_state_dict = lambda path, *a, **k: load_file(path)
    if not hasattr(mu, "get_checkpoint_shard_files"):
        mu.get_checkpoint_shard_files = lambda *a, **k: ([], {})
    import optimum.quanto as q
    return q


def run_one(model_dir, mode, n_prompt, n_gen):
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to("cuda").eval()
    info = {"mode": mode, "model": model_dir, "torch": torch.__version__}
    if mode != "bf16":
        q = import_quanto()
        info["quanto"] = getattr(q, "__version__", "?")
        q.quantize(model, weights=q.qint8 if mode == "int8" else q.qint4, exclude="lm_head")
        q.freeze(model)
    torch.cuda.synchronize()
    info["weights_bytes"] = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    vocab = model.config.vocab_size
    g = torch.Generator(device="cuda").manual_seed(1234)
    ids = torch.randint(0, vocab, (1, n_prompt), device="cuda", generator=g)
    with torch.no_grad():
        model(ids)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(3):
            model(ids)
        torch.cuda.synchronize()
        info["pp_tokens_per_s"] = 3 * n_prompt / (time.perf_counter() - t0)
        kw = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
        model.generate(ids[:, :1], max_new_tokens=8, min_new_tokens=8, **kw)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(ids[:, :1], max_new_tokens=n_gen, min_new_tokens=n_gen, **kw)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    info["tg_new_tokens"] = int(out.shape[1] - 1)
    info["tg_tokens_per_s"] = info["tg_new_tokens"] / dt
    info["peak_bytes"] = torch.cuda.max_memory_allocated()
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--mode", default="all", choices=["bf16", "int8", "int4", "all"])
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--timeout", type=int, default=240)
    a = ap.parse_args()
    if a.mode != "all":
        print(json.dumps(run_one(a.model_dir, a.mode, a.prompt, a.gen)), flush=True)
        return 0
    for mode in ["bf16", "int8", "int4"]:
        cmd = [sys.executable, __file__, a.model_dir, "--mode", mode, "--prompt", str(a.prompt), "--gen", str(a.gen)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=os.environ)
            lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
            if r.returncode == 0 and lines:
                print(lines[-1], flush=True)
            else:
                print(json.dumps({"mode": mode, "model": a.model_dir, "error": r.stderr.strip().splitlines()[-3:]}), flush=True)
        except subprocess.TimeoutExpired:
            print(json.dumps({"mode": mode, "model": a.model_dir, "error": f"timeout after {a.timeout} s"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
