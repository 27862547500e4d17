#!/usr/bin/env python3
"""Writes the small safetensors fixtures in tests/data/fixtures with Python's own writers.

The C++ tests read these files and re-write them through qllm's writer, which must reproduce
them byte for byte, so the interop is checked even where Python is unavailable. Re-run only on
purpose:  python3 tools/make_fixtures.py  (needs numpy, safetensors, ml_dtypes, huggingface_hub)

  python_written.safetensors  one tensor per dtype, written by safetensors.numpy.save_file
  python_sharded/             the same tensors split by huggingface_hub's sharding (max 64 bytes
                              per shard), each shard written by save_file with {"format": "pt"},
                              and the index dumped as transformers' save_pretrained does
It also writes the fuzzer's seed corpus, tests/fuzz/seeds/safetensors: a few tiny valid files.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np
import safetensors
import huggingface_hub
from huggingface_hub.serialization._base import split_state_dict_into_shards_factory
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "fixtures")
SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds", "safetensors")


def tensors():
    # Values are documented here because the C++ test checks them.
    return {
        "f32": (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3),  # -1.0 .. 1.5
        "f64.scalar": np.array(3.25, dtype=np.float64),                     # 0-dim
        "f16": np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16),
        "bf16": np.array([1.0, -2.0, 3.140625], dtype=ml_dtypes.bfloat16),
        "f8_e4m3": np.array([1.0, -448.0, 0.015625], dtype=ml_dtypes.float8_e4m3fn),
        "i64": np.array([-1, 2**40], dtype=np.int64),
        "i32": np.array([[7], [-7]], dtype=np.int32),
        "i16": np.array([-32768, 32767], dtype=np.int16),
        "i8": np.array([-128, 127, 0], dtype=np.int8),
        "u8": np.array([0, 255], dtype=np.uint8),
        "bool": np.array([True, False, True], dtype=np.bool_),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "layer.1.weight": np.full((2, 2), 0.25, dtype=np.float32),
        "layer.10.weight": np.full((2, 2), -0.25, dtype=np.float32),
    }


def write_seeds():
    os.makedirs(SEEDS, exist_ok=True)
    seeds = {
        "empty": ({}, None),
        "metadata_only": ({}, {"format": "pt"}),
        "two_f32": ({"a": np.ones((2, 2), np.float32), "b": np.arange(3, dtype=np.float32)},
                    {"format": "pt"}),
        "scalar_and_empty": ({"s": np.array(1.5, np.float64), "e": np.zeros((0, 2), np.int8)}, None),
        "mixed": ({"w": np.array([1, -2], np.int16), "h": np.array([1.0], ml_dtypes.bfloat16),
                   "q": np.array([7, 9], np.uint8), "f": np.array([0.5], ml_dtypes.float8_e4m3fn)},
                  None),
    }
    for name, (t, meta) in seeds.items():
        save_file(t, os.path.join(SEEDS, name + ".safetensors"), metadata=meta)


def main():
    write_seeds()
    os.makedirs(OUT, exist_ok=True)
    t = tensors()
    save_file(t, os.path.join(OUT, "python_written.safetensors"), metadata={"format": "pt"})

    shard_dir = os.path.join(OUT, "python_sharded")
    os.makedirs(shard_dir, exist_ok=True)
    split = split_state_dict_into_shards_factory(
        t, get_storage_size=lambda a: a.nbytes, filename_pattern="model{suffix}.safetensors",
        max_shard_size=64)
    for filename, names in split.filename_to_tensors.items():
        save_file({n: t[n] for n in names}, os.path.join(shard_dir, filename),
                  metadata={"format": "pt"})
    total_parameters = sum(int(a.size) for a in t.values())
    index = {"metadata": {"total_parameters": total_parameters, **split.metadata},
             "weight_map": split.tensor_to_filename}
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    print(f"wrote fixtures with safetensors {safetensors.__version__}, numpy {np.__version__}, "
          f"ml_dtypes {ml_dtypes.__version__}, huggingface_hub {huggingface_hub.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
