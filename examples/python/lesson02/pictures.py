"""Pictures for lesson 2 without an imaging library: PNG (zlib + the chunk layout) and SVG (text)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def write_png(path, rgb: np.ndarray) -> None:
    """rgb: uint8 [height, width, 3] (or [height, width] grey). Filter 0 on every row, one IDAT."""
    a = np.asarray(rgb, dtype=np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"write_png wants [height, width, 3], got {a.shape}")
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def grey(tokens: np.ndarray, levels: int, scale: int) -> np.ndarray:
    """A token grid [h, w] as an RGB image, ink dark on white, each cell scale x scale pixels."""
    v = 255 - np.asarray(tokens, dtype=np.float64) * 255.0 / (levels - 1)
    img = np.repeat(np.repeat(v, scale, 0), scale, 1).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def tile(images: list[list[np.ndarray]], gap: int = 2, background=(200, 200, 200)) -> np.ndarray:
    """Rows of equally sized RGB images, gap pixels apart."""
    h, w, _ = images[0][0].shape
    cols = max(len(r) for r in images)
    out = np.empty((len(images) * (h + gap) + gap, cols * (w + gap) + gap, 3), dtype=np.uint8)
    out[:] = background
    for i, row in enumerate(images):
        for j, img in enumerate(row):
            y, x = gap + i * (h + gap), gap + j * (w + gap)
            out[y : y + h, x : x + w] = img
    return out


def scatter_svg(path, points: list[dict], x_label: str, y_label: str, log_x: bool = True, size=(640, 400)) -> None:
    """A labelled scatter plot: points [{"x", "y", "label", "err"?}], as an SVG file."""
    W, H = size
    left, right, top, bottom = 70, 20, 20, 50
    xs = np.array([p["x"] for p in points], dtype=float)
    ys = np.array([p["y"] + p.get("err", 0.0) for p in points] + [p["y"] - p.get("err", 0.0) for p in points], dtype=float)
    fx = np.log10 if log_x else (lambda v: v)
    x0, x1 = fx(xs.min()) - 0.1, fx(xs.max()) + 0.1
    y0, y1 = min(0.0, ys.min()), ys.max() * 1.1 + 1e-9

    def px(v):
        return left + (fx(v) - x0) / (x1 - x0) * (W - left - right)

    def py(v):
        return H - bottom - (v - y0) / (y1 - y0) * (H - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{left}" y1="{H - bottom}" x2="{W - right}" y2="{H - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{H - bottom}" stroke="black"/>',
           f'<text x="{(W + left) / 2}" y="{H - 12}" text-anchor="middle">{x_label}</text>',
           f'<text x="16" y="{(H - bottom + top) / 2}" text-anchor="middle" transform="rotate(-90 16 {(H - bottom + top) / 2})">{y_label}</text>']
    ticks = [t for t in (10, 20, 30, 50, 100, 200, 300) if xs.min() / 1.3 <= t <= xs.max() * 1.3] if log_x else np.linspace(xs.min(), xs.max(), 5)
    for t in ticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{H - bottom}" x2="{px(t):.1f}" y2="{H - bottom + 5}" stroke="black"/>')
        out.append(f'<text x="{px(t):.1f}" y="{H - bottom + 18}" text-anchor="middle">{t:g}</text>')
    for t in np.linspace(y0, y1, 5):
        out.append(f'<line x1="{left - 5}" y1="{py(t):.1f}" x2="{left}" y2="{py(t):.1f}" stroke="black"/>')
        out.append(f'<text x="{left - 8}" y="{py(t) + 4:.1f}" text-anchor="end">{t:.2g}</text>')
    for p in points:
        x, y = px(p["x"]), py(p["y"])
        if p.get("err"):
            out.append(f'<line x1="{x:.1f}" y1="{py(p["y"] - p["err"]):.1f}" x2="{x:.1f}" y2="{py(p["y"] + p["err"]):.1f}" stroke="#555"/>')
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#c0392b"/>')
        out.append(f'<text x="{x + 6:.1f}" y="{y - 6:.1f}">{p["label"]}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")
