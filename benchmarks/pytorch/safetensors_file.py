"""Reads a safetensors file that metalearn wrote (the twins' dumps) into torch tensors."""
import json
import struct

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32}


def load(path):
    """The tensors of `path` by name, and its metadata (a dict of strings)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[h["dtype"]])
        tensors[name] = t.reshape(h["shape"]).clone()
    return tensors, meta
