#!/usr/bin/env python3
"""Check that optimum-quanto loads a qllm-written quantized model and gets quanto's own results.

Usage: python3 tools/golden/check_quanto_loads.py QLLM_DIR GOLDEN_DIR [--atol 1e-3] [--strict]

QLLM_DIR   a quantized model directory written by `qllm quantize` (model.safetensors,
           quanto_qmap.json, config.json)
GOLDEN_DIR the matching optimum-quanto golden, e.g. tests/data/goldens/quanto/qwen2-qint4
           (its golden.safetensors holds ids, logits and greedy from quanto's own checkpoint)

Loads QLLM_DIR with QuantizedModelForCausalLM.from_pretrained on CPU, runs the golden prompt,
prints max |logit diff| against the golden logits and whether the greedy tokens agree, and
compares the tensor layout (names, dtypes, shapes) and quanto_qmap.json with the golden's.
Exit status: 0 when the logits agree within --atol (and, with --strict, the layout and greedy
tokens match too), 1 otherwise, including when quanto cannot load the directory.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_goldens as mg  # noqa: E402  (sets up CPU-only torch before importing it)
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def compare_layout(qllm_dir, golden_dir):
    """Return a list of human-readable layout differences (empty when identical)."""
    diffs = []
    mine, _ = mg.st_header(os.path.join(qllm_dir, "model.safetensors"))
    ref, _ = mg.st_header(os.path.join(golden_dir, "model.safetensors"))
    for k in sorted(set(ref) - set(mine)):
        diffs.append(f"missing tensor {k} {ref[k][0]} {ref[k][1]}")
    for k in sorted(set(mine) - set(ref)):
        diffs.append(f"extra tensor {k} {mine[k][0]} {mine[k][1]}")
    for k in sorted(set(mine) & set(ref)):
        if mine[k][0] != ref[k][0] or list(mine[k][1]) != list(ref[k][1]):
            diffs.append(f"tensor {k}: {mine[k][0]} {mine[k][1]} vs quanto {ref[k][0]} {ref[k][1]}")
    with open(os.path.join(qllm_dir, "quanto_qmap.json"), encoding="utf-8") as f:
        qa = json.load(f)
    with open(os.path.join(golden_dir, "quanto_qmap.json"), encoding="utf-8") as f:
        qb = json.load(f)
    if qa != qb:
        for k in sorted(set(qa) | set(qb)):
            if qa.get(k) != qb.get(k):
                diffs.append(f"qmap {k}: {qa.get(k)} vs quanto {qb.get(k)}")
    return diffs


def main():
    ap = argparse.ArgumentParser(description="Check that optimum-quanto loads a qllm-written model.")
    ap.add_argument("qllm_dir")
    ap.add_argument("golden_dir")
    ap.add_argument("--atol", type=float, default=1e-3, help="max allowed |logit diff| (default 1e-3)")
    ap.add_argument("--strict", action="store_true", help="also fail on layout or greedy differences")
    args = ap.parse_args()
    torch.set_num_threads(1)

    golden = load_file(os.path.join(args.golden_dir, "golden.safetensors"))
    ids = golden["ids"]
    ok = True

    layout = compare_layout(args.qllm_dir, args.golden_dir)
    for d in layout:
        print(f"layout: {d}")
    print(f"layout differences: {len(layout)}")
    if layout and args.strict:
        ok = False

    try:
        QM, _ = mg.setup_quanto()
        model = QM.from_pretrained(args.qllm_dir)._wrapped
        logits = mg.logits_of(model, ids)
        toks, _ = mg.greedy(model, ids, golden["greedy"].numel(), "qllm")
    except Exception as e:
        print(f"FAIL: optimum-quanto could not load or run {args.qllm_dir}: {type(e).__name__}: {e}")
        return 1

    if logits.shape != golden["logits"].shape:
        print(f"FAIL: logits shape {tuple(logits.shape)} vs golden {tuple(golden['logits'].shape)}")
        return 1
    diff = float((logits - golden["logits"]).abs().max())
    same_greedy = toks == golden["greedy"].tolist()
    n_agree = sum(int(a == b) for a, b in zip(toks, golden["greedy"].tolist()))
    print(f"max |logit diff| = {diff:.6g} (atol {args.atol:g}), max |golden logit| = "
          f"{float(golden['logits'].abs().max()):.6g}")
    print(f"greedy: {n_agree}/{len(toks)} tokens agree{'' if same_greedy else ' (MISMATCH)'}")
    if not same_greedy:
        print(f"  qllm:   {toks}\n  quanto: {golden['greedy'].tolist()}")
    if diff > args.atol:
        ok = False
    if args.strict and not same_greedy:
        ok = False
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
