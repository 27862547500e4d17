#!/usr/bin/env python3
"""qllm's safetensors reader and writer against Python's own safetensors and huggingface_hub.

Run by ctest as `python3 test_safetensors_interop.py QLLM_BINARY`; exits 77 (skip) if numpy or
safetensors cannot be imported. Parts that need ml_dtypes (bfloat16, float8) or huggingface_hub
(sharding) are skipped, saying so, if those are missing.

  1. Python writes a file with many dtypes, a 0-dim scalar, empty tensors, odd names and
     metadata; `qllm inspect --json` must report every tensor's dtype, shape and byte size.
  2. `qllm convert IN OUT` must write the very bytes safetensors.numpy.save_file writes.
  3. `qllm convert --dtype f16|bf16|f32` must equal save_file of the numpy/ml_dtypes cast.
  4. `qllm convert --max-shard-size` must equal huggingface_hub's split, each shard written by
     save_file and the index dumped as transformers' save_pretrained does.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import safetensors
    from safetensors.numpy import save_file
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None
try:
    from huggingface_hub.serialization._base import split_state_dict_into_shards_factory
except ImportError:
    split_state_dict_into_shards_factory = None

QLLM = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")


def qllm(*args):
    r = subprocess.run([QLLM, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"qllm {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r.stdout


def read(path):
    with open(path, "rb") as f:
        return f.read()


def layout_order(path):
    """Tensor names in data order, from the file's own header."""
    data = read(path)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return sorted(header, key=lambda k: header[k]["data_offsets"][0])


def tensors():
    rng = np.random.default_rng(1234)
    f32 = rng.standard_normal((7, 5)).astype(np.float32) * 3
    # Values where rounding to f16/bf16 matters: ties, overflow to Inf, subnormals, signed zero.
    special = np.array([0.0, -0.0, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 65504.0, 65519.0, 65520.0,
                        1e-8, -3e-5, 2**-24, 1.0 + 2**-8, 1.0 + 3 * 2**-8, np.inf, -np.inf,
                        3.4e38, 1.17549435e-38], dtype=np.float32)
    t = {
        "model.embed_tokens.weight": f32,
        "special": special,
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "empty.i8": np.zeros((4, 0), dtype=np.int8),
        "f64": rng.standard_normal((3,)),
        "f16": rng.standard_normal((4, 4)).astype(np.float16),
        "i64": np.array([-(2**62), 2**40, 0], dtype=np.int64),
        "i32": np.arange(-5, 5, dtype=np.int32).reshape(2, 5),
        "i16": np.array([-32768, 7], dtype=np.int16),
        "i8": np.array([-1, 1], dtype=np.int8),
        "u8": rng.integers(0, 256, (3, 8), dtype=np.uint8),
        "bool": np.array([True, False]),
        # Names that need JSON escaping or sort by raw bytes.
        'quote"and\\backslash': np.ones(2, dtype=np.float32),
        "tab\tnewline\n": np.ones(1, dtype=np.float32),
        "caf\u00e9.\U0001F600": np.ones(3, dtype=np.float32),
        "Zed": np.zeros(1, dtype=np.float32),
        "a.10": np.zeros(1, dtype=np.float32),
        "a.9": np.zeros(1, dtype=np.float32),
    }
    if ml_dtypes is not None:
        t["bf16"] = rng.standard_normal((2, 3)).astype(ml_dtypes.bfloat16)
        t["f8"] = np.array([1.0, -448.0, 0.5], dtype=ml_dtypes.float8_e4m3fn)
    return t


def cast(t, to):
    """What torch's .to(dtype) gives, via numpy / ml_dtypes (round to nearest even)."""
    floats = {np.dtype(np.float32), np.dtype(np.float16)}
    if ml_dtypes is not None:
        floats.add(np.dtype(ml_dtypes.bfloat16))
    with np.errstate(over="ignore"):  # overflow to Inf is one of the cases under test
        return {k: (v.astype(to) if v.dtype in floats else v) for k, v in t.items()}


def main():
    print(f"safetensors {safetensors.__version__}, numpy {np.__version__}, "
          f"ml_dtypes {getattr(ml_dtypes, '__version__', 'missing')}, "
          f"huggingface_hub {'present' if split_state_dict_into_shards_factory else 'missing'}")
    t = tensors()
    meta = {"format": "pt"}
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.safetensors")
        save_file(t, src, metadata=meta)

        # 1. inspect reads what Python wrote.
        rep = json.loads(qllm("inspect", "--json", src))
        by_name = {x["name"]: x for x in rep["tensors"]}
        check(set(by_name) == set(t), f"tensor names: {sorted(set(by_name) ^ set(t))}")
        names = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
                 np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
                 np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
        if ml_dtypes is not None:
            names[np.dtype(ml_dtypes.bfloat16)] = "BF16"
            names[np.dtype(ml_dtypes.float8_e4m3fn)] = "F8_E4M3"
        for k, v in t.items():
            x = by_name.get(k)
            if x is None:
                continue
            check(x["dtype"] == names[v.dtype], f"{k!r}: dtype {x['dtype']} != {names[v.dtype]}")
            check(x["shape"] == list(v.shape), f"{k!r}: shape {x['shape']} != {list(v.shape)}")
            check(x["bytes"] == v.nbytes, f"{k!r}: bytes {x['bytes']} != {v.nbytes}")
        check(rep["parameters"] == sum(v.size for v in t.values()), "parameter count")
        check(rep["memory_footprint_bytes"] == sum(v.nbytes for v in t.values()), "footprint")
        check(rep["file_bytes"] == os.path.getsize(src), "file size")
        check(rep["metadata"] == meta, f"metadata {rep['metadata']}")
        check([x["name"] for x in rep["tensors"]] == layout_order(src), "file order")

        # 2. A plain rewrite is byte-identical.
        out = os.path.join(d, "out.safetensors")
        qllm("convert", src, out)
        check(read(out) == read(src), "convert IN OUT differs from save_file")

        # 3. Casts equal save_file of the cast tensors.
        targets = [("f16", np.float16), ("f32", np.float32)]
        if ml_dtypes is not None:
            targets.append(("bf16", ml_dtypes.bfloat16))
        else:
            print("skip: bf16/f8 parts (no ml_dtypes)")
        for flag, to in targets:
            ref = os.path.join(d, f"ref_{flag}.safetensors")
            save_file(cast(t, to), ref, metadata=meta)
            got = os.path.join(d, f"got_{flag}.safetensors")
            qllm("convert", "--dtype", flag, src, got)
            check(read(got) == read(ref), f"convert --dtype {flag} differs from the numpy cast")

        # 4. Sharding equals huggingface_hub's split plus transformers' index.
        if split_state_dict_into_shards_factory is None:
            print("skip: sharding (no huggingface_hub)")
        else:
            order = layout_order(src)  # qllm shards in the input's file order
            state = {k: t[k] for k in order}
            for limit in ["300", "1KB", "1MB"]:
                ref_dir = os.path.join(d, f"ref_shards_{limit}")
                os.makedirs(ref_dir)
                split = split_state_dict_into_shards_factory(
                    state, get_storage_size=lambda a: a.nbytes,
                    filename_pattern="model{suffix}.safetensors",
                    max_shard_size=int(limit) if limit.isdigit() else limit)
                for fn, keys in split.filename_to_tensors.items():
                    save_file({k: state[k] for k in keys}, os.path.join(ref_dir, fn), metadata=meta)
                if split.is_sharded:
                    index = {"metadata": {"total_parameters": sum(v.size for v in t.values()),
                                          **split.metadata},
                             "weight_map": split.tensor_to_filename}
                    with open(os.path.join(ref_dir, "model.safetensors.index.json"), "w",
                              encoding="utf-8") as f:
                        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
                got_dir = os.path.join(d, f"got_shards_{limit}")
                qllm("convert", "--max-shard-size", limit, src, got_dir)
                want, got = sorted(os.listdir(ref_dir)), sorted(os.listdir(got_dir))
                check(want == got, f"shards for {limit}: {got} != {want}")
                for fn in want:
                    if fn in got:
                        check(read(os.path.join(ref_dir, fn)) == read(os.path.join(got_dir, fn)),
                              f"{limit}: {fn} differs")
                # qllm reads the Python-written sharded directory.
                rep = json.loads(qllm("inspect", "--json", ref_dir))
                check(rep["tensor_count"] == len(t), f"{limit}: inspect of the Python shards")

    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
