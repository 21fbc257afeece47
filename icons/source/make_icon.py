"""Draws Verbio's app icon (a blue rounded square with four white voice bars) as a 1024x1024 RGBA PNG.

Standard library only (zlib + struct); shapes are antialiased from signed distances.
Regenerate the icon set with:  python3 icons/source/make_icon.py && npm run tauri --prefix ui -- icon icons/source/icon-1024.png
"""

import math
import os
import struct
import zlib

SIZE = 1024
# Outer rounded square, with transparent padding as desktop icon themes expect.
PAD = 64
RADIUS = 200
TOP = (0x3B, 0x6F, 0xF0)
BOTTOM = (0x1C, 0x47, 0xB5)
# Bars in a 64-unit design grid: (x, y, width, height); each is a capsule.
BARS = [(14, 26, 6, 12), (24, 18, 6, 28), (34, 12, 6, 40), (44, 22, 6, 20)]


def rounded_box_sdf(px, py, cx, cy, hw, hh, r):
    qx = abs(px - cx) - (hw - r)
    qy = abs(py - cy) - (hh - r)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    inside = min(max(qx, qy), 0.0)
    return outside + inside - r


def coverage(d):
    return min(max(0.5 - d, 0.0), 1.0)


def main():
    scale = (SIZE - 2 * PAD) / 64.0
    half = (SIZE - 2 * PAD) / 2.0
    centre = SIZE / 2.0
    bars = []
    for x, y, w, h in BARS:
        bw, bh = w * scale, h * scale
        bars.append((PAD + x * scale + bw / 2, PAD + y * scale + bh / 2, bw / 2, bh / 2, bw / 2))

    rows = bytearray()
    for j in range(SIZE):
        rows.append(0)  # PNG filter type: none
        py = j + 0.5
        t = j / (SIZE - 1)
        base = tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM))
        for i in range(SIZE):
            px = i + 0.5
            a = coverage(rounded_box_sdf(px, py, centre, centre, half, half, RADIUS))
            if a <= 0.0:
                rows += b"\x00\x00\x00\x00"
                continue
            white = 0.0
            for cx, cy, hw, hh, r in bars:
                if abs(px - cx) <= hw + 1 and abs(py - cy) <= hh + 1:
                    white = max(white, coverage(rounded_box_sdf(px, py, cx, cy, hw, hh, r)))
            rgb = [round(c + (255 - c) * white) for c in base]
            rows += bytes(rgb) + bytes([round(255 * a)])

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(rows), 9))
    png += chunk(b"IEND", b"")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "icon-1024.png")
    with open(out, "wb") as f:
        f.write(png)
    print(out)


if __name__ == "__main__":
    main()
