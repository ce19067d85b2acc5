#!/usr/bin/env python3
"""Pixels of a PNG written by ordo against a golden uint8 image (standard library only: zlib, json).

  png_check.py IMAGE.png CASE.outputs.safetensors CASE.json   -> equal to image_uint8[0] except at the
                                                                  JSON's uint8_near_boundary pixels (+-1)
  png_check.py --size IMAGE.png WIDTH HEIGHT                   -> the PNG has that size
  png_check.py --column STRIP.png INDEX IMAGE.png              -> the INDEX-th image of a strip of images
                                                                  as wide as IMAGE.png equals it, pixel for pixel
Exit status 0 when the check holds; one line says what was found.
"""
import json
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, colour, interlace) != (8, 2, 0):
                sys.exit(f"{path}: not an 8-bit RGB non-interlaced PNG")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), width * 3, [], bytearray(width * 3)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], (prev[i - 3] if i >= 3 else 0)
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, rows


def read_u8(path, name):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    info = json.loads(data[8:8 + n])[name]
    if info["dtype"] != "U8":
        sys.exit(f"{path}: {name} is not U8")
    begin, end = info["data_offsets"]
    return info["shape"], data[8 + n + begin:8 + n + end]


if sys.argv[1] == "--size":
    w, h, _ = read_png(sys.argv[2])
    ok = (w, h) == (int(sys.argv[3]), int(sys.argv[4]))
    print(f"{sys.argv[2]}: {w}x{h}")
    sys.exit(0 if ok else 1)

if sys.argv[1] == "--column":
    sw, sh, strip = read_png(sys.argv[2])
    w, h, rows = read_png(sys.argv[4])
    i = int(sys.argv[3])
    if sh != h or sw < (i + 1) * w:
        sys.exit(f"{sys.argv[2]}: {sw}x{sh} holds no image {i} of {w}x{h}")
    differ = sum(strip[y][i * w * 3:(i + 1) * w * 3] != rows[y] for y in range(h))
    print(f"{sys.argv[2]} image {i} against {sys.argv[4]}: {differ} of {h} rows differ")
    sys.exit(0 if differ == 0 else 1)

png, outputs, run = sys.argv[1:4]
w, h, rows = read_png(png)
shape, pixels = read_u8(outputs, "image_uint8")
if shape[1:] != [h, w, 3]:
    sys.exit(f"{png}: {w}x{h}, the golden image is {shape[2]}x{shape[1]}")
near = {tuple(p[1:]) for p in json.load(open(run))["uint8_near_boundary"]["pixels_byxc"] if p[0] == 0}
exact = off_by_one = 0
for y in range(h):
    for x in range(w):
        for c in range(3):
            d = abs(rows[y][x * 3 + c] - pixels[(y * w + x) * 3 + c])
            if d == 0:
                continue
            if d == 1 and (y, x, c) in near:
                off_by_one += 1
            else:
                exact += 1
print(f"{png}: {exact} pixel values differ from the official image ({off_by_one} near-boundary values off by 1, allowed)")
sys.exit(0 if exact == 0 else 1)
