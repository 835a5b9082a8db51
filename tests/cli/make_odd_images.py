#!/usr/bin/env python3
"""Writes small but valid PNGs of every awkward kind into a directory (no third-party data):
grayscale, gray+alpha, palette (with transparency), 16-bit RGB, RGBA, 1x1, all black, all white."""
import math
import os
import struct
import sys
import zlib


def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(path, width, height, bit_depth, color_type, rows, extra=b""):
    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) +
                chunk(b"IEND", b""))


def he_pixel(x, y):
    """An H&E-ish colour field: purple blobs on pink."""
    h = 0.5 + 0.5 * math.sin(x * 0.3) * math.cos(y * 0.25)
    e = 0.5 + 0.5 * math.cos(x * 0.05 + y * 0.07)
    od = [0.65 * h * 1.5 + 0.07 * e, 0.70 * h * 1.5 + 0.99 * e, 0.29 * h * 1.5 + 0.11 * e]
    return [max(0, min(255, round(255 * math.exp(-v)))) for v in od]


def main(d):
    w = h = 64
    rgb = [[he_pixel(x, y) for x in range(w)] for y in range(h)]
    png(os.path.join(d, "odd_gray.png"), w, h, 8, 0, [bytes(p[1] for p in row) for row in rgb])
    png(os.path.join(d, "odd_gray_alpha.png"), w, h, 8, 4, [bytes(v for p in row for v in (p[1], 200)) for row in rgb])
    png(os.path.join(d, "odd_rgb16.png"), w, h, 16, 2,
        [b"".join(struct.pack(">HHH", *(v * 257 for v in p)) for p in row) for row in rgb])
    png(os.path.join(d, "odd_rgba.png"), w, h, 8, 6,
        [bytes(v for x, p in enumerate(row) for v in (*p, 255 if x % 7 else 0)) for row in rgb])
    palette = [he_pixel(i, i * 3) for i in range(16)]
    plte = chunk(b"PLTE", bytes(v for p in palette for v in p)) + chunk(b"tRNS", bytes([255] * 15 + [0]))
    png(os.path.join(d, "odd_palette.png"), w, h, 8, 3, [bytes((x + y) % 16 for x in range(w)) for y in range(h)], plte)
    png(os.path.join(d, "odd_1x1.png"), 1, 1, 8, 2, [bytes([150, 80, 160])])
    png(os.path.join(d, "odd_black.png"), w, h, 8, 2, [bytes(3 * w) for _ in range(h)])
    png(os.path.join(d, "odd_white.png"), w, h, 8, 2, [bytes([255] * 3 * w) for _ in range(h)])


if __name__ == "__main__":
    main(sys.argv[1])
