"""The VQ tokenizer's decoder from Python: the golden vq_tiny codes give the official uint8 image."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import ordo

VQ = Path(__file__).resolve().parent.parent / "data" / "vq"


def read_tensor(path, name):
    """One tensor of a safetensors file (numpy only)."""
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    info = json.loads(data[8:8 + n])[name]
    dtype = {"F32": np.float32, "I64": np.int64, "U8": np.uint8}[info["dtype"]]
    begin, end = info["data_offsets"]
    return np.frombuffer(data[8 + n + begin:8 + n + end], dtype=dtype).reshape(info["shape"])


def test_vq_tiny_decodes_to_the_official_image():
    dec = ordo.VQDecoder(str(VQ / "vq_tiny.weights.safetensors"))
    assert dec.codebook_size == 64 and dec.downsample == 4
    codes = read_tensor(VQ / "vq_tiny.outputs.safetensors", "codes")  # int64 [1, 36]
    official = read_tensor(VQ / "vq_tiny.outputs.safetensors", "image_uint8")  # [1, 24, 24, 3]
    near = {tuple(p) for p in json.loads((VQ / "vq_tiny.json").read_text())["uint8_near_boundary"]["pixels_byxc"]}
    for tokens in (codes, codes.reshape(1, 6, 6), codes.astype(np.int32).reshape(1, 6, 6)):
        images = dec.decode(tokens)
        assert images.dtype == np.uint8 and images.shape == (1, 24, 24, 3)
        diff = np.argwhere(images.astype(int) != official.astype(int))
        assert all(tuple(p) in near for p in diff)
        assert np.abs(images.astype(int) - official.astype(int)).max() <= 1
    # a batch of non-square grids: each image as it decodes alone
    grids = np.arange(2 * 3 * 5, dtype=np.int32).reshape(2, 3, 5) % 64
    both = dec.decode(grids)
    assert both.shape == (2, 12, 20, 3)
    assert np.array_equal(both[1], dec.decode(grids[1:])[0])


def test_vq_errors_are_named():
    dec = ordo.VQDecoder(str(VQ / "vq_tiny.weights.safetensors"))
    with pytest.raises(ValueError, match="token 64 at row 0, column 1 is outside the codebook of 64 entries"):
        dec.decode(np.array([[[0, 64], [1, 2]]], dtype=np.int64))
    with pytest.raises(ValueError, match="not a square grid"):
        dec.decode(np.zeros((1, 6), dtype=np.int32))
    with pytest.raises(ValueError, match="expected int32 or int64"):
        dec.decode(np.zeros((1, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="not a VQ tokenizer"):
        ordo.VQDecoder(str(VQ.parent / "e2e" / "raster_G8_cfg2.0_label3.weights.safetensors"))
