#!/usr/bin/env python3
"""Reference pixels for tests/data/omniglot_test.cpp, computed independently of metalearn.

Decodes Omniglot PNGs with a small pure-Python PNG reader (zlib + scanline unfiltering;
no libpng), inverts them (ink = 1.0) and area-averages 105x105 -> 28x28: output pixel
(oy, ox) is the mean of the source square [oy*105/28, (oy+1)*105/28) x [ox*105/28, ...),
each source pixel weighted by the area it shares with that square.

Usage: python3 omniglot_pixels.py /path/to/omniglot
Prints, for a few fixed images, the strongest pixel and a pixel on a stroke border (a
fractional value), to be pasted into the test.
"""
import struct
import sys
import zlib


def read_png_gray(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert color == 0 and interlace == 0, "grey, non-interlaced only"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = (w * depth + 7) // 8
    bpp = max(1, depth // 8)
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        prev = line
        maxv = (1 << depth) - 1
        row = []
        for x in range(w):
            bit = x * depth
            v = (line[bit // 8] >> (8 - depth - bit % 8)) & maxv
            row.append(v * 255 // maxv)
        rows.append(row)
    return rows


def area_resize_ink(img, out):
    n = len(img)
    scale = n / out

    def weights(o):
        lo, hi = o * scale, (o + 1) * scale
        return [(p, (min(hi, p + 1) - max(lo, p)) / scale)
                for p in range(int(lo), min(n, int(-(-hi // 1)))) if min(hi, p + 1) > max(lo, p)]

    ink = [[1.0 - v / 255.0 for v in row] for row in img]
    res = [[0.0] * out for _ in range(out)]
    for oy in range(out):
        for ox in range(out):
            res[oy][ox] = sum(wy * wx * ink[py][px] for py, wy in weights(oy) for px, wx in weights(ox))
    return res


IMAGES = [
    "images_background/Latin/character01/0683_01.png",
    "images_background/Greek/character05/0398_03.png",
    "images_evaluation/Tengwar/character10/1540_20.png",
]

if __name__ == "__main__":
    root = sys.argv[1]
    for rel in IMAGES:
        r = area_resize_ink(read_png_gray(f"{root}/{rel}"), 28)
        best = max(((r[y][x], y, x) for y in range(28) for x in range(28)))
        frac = max(((r[y][x], y, x) for y in range(28) for x in range(28) if 0.2 < r[y][x] < 0.8))
        total = sum(map(sum, r))
        print(f"{rel}: max {best[0]:.6f} at (y={best[1]}, x={best[2]}); "
              f"fractional {frac[0]:.6f} at (y={frac[1]}, x={frac[2]}); sum {total:.6f}")
