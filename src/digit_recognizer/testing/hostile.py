"""Hostile and careless inputs for the server, the CLI and the model loader, made on demand (nothing is
stored): small files that decode to huge images, images that make many components, and JSON bodies that
break naive parsers. Used by tests/test_hostile.py and benchmarks/attack.py.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

BIG_SIDE = 7000  # px: inside the decompression-bomb cap, as large as a phone photo gets
FLOAT_SIDE = 6000
LINES = 400  # thin lines across one image, each its own component
DEEP = 100_000  # levels of JSON nesting
HUGE_DIGITS = 4301  # one more digit than Python's int-to-str limit
JSON_MB = 9.6  # a body just under the server's file limit


@dataclass(frozen=True)
class Hostile:
    name: str
    path: str  # /api/predict or /api/read
    body: bytes
    content_type: str  # "image/png", ... for a multipart upload; "application/json" for a raw body


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def big_16bit_png(side: int = BIG_SIDE) -> bytes:
    """A 7000x7000 16-bit PNG of one digit-like bar: about 100 KB on disk, 98 MB decoded."""
    img = Image.new("I;16", (side, side), 60000)
    ImageDraw.Draw(img).rectangle([side // 3, side // 4, side // 3 + side // 12, 3 * side // 4], fill=0)
    return png(img)


def big_float_tiff(side: int = FLOAT_SIDE) -> bytes:
    """A 6000x6000 32-bit float TIFF, deflated: a few hundred KB, 144 MB decoded."""
    a = np.zeros((side, side), np.float32)
    a[side // 4: 3 * side // 4, side // 3: side // 3 + side // 12] = 1.0
    buf = io.BytesIO()
    Image.fromarray(a, mode="F").save(buf, format="TIFF", compression="tiff_adobe_deflate")
    return buf.getvalue()


def big_rgba_png(side: int = BIG_SIDE) -> bytes:
    """A 7000x7000 transparent PNG with one dark bar: small on disk, 196 MB decoded."""
    img = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    ImageDraw.Draw(img).rectangle([side // 3, side // 4, side // 3 + side // 12, 3 * side // 4],
                                  fill=(0, 0, 0, 255))
    return png(img)


def many_lines_png(lines: int = LINES, height: int = 1000) -> bytes:
    """A few KB PNG of `lines` thin vertical lines in two rows, every other one a third as tall: that many
    components for the number reader, and each short one a fragment to merge into its neighbour. None crosses
    the whole image, which would make it a page's ruling, and the image stays under the size at which it is
    shrunk (which would merge neighbours)."""
    columns = (lines + 1) // 2
    img = Image.new("L", (2 * columns + 20, height), 255)
    draw = ImageDraw.Draw(img)
    for i in range(lines):
        x, middle = 10 + 2 * (i // 2), (height // 4 if i % 2 == 0 else 3 * height // 4)
        reach = height // 5 if (i // 2) % 2 == 0 else height // 15
        draw.line([(x, middle - reach), (x, middle + reach)], fill=0, width=1)
    return png(img)


def deep_json(depth: int = DEEP) -> bytes:
    return b'{"pixels": ' + b"[" * depth + b"]" * depth + b"}"


def huge_int_json(digits: int = HUGE_DIGITS) -> bytes:
    row = b"[" + b", ".join([b"9" * digits] + [b"0"] * 27) + b"]"
    return b'{"pixels": [' + b", ".join([row] + [b"[" + b", ".join([b"0"] * 28) + b"]"] * 27) + b"]}"


def overflow_json() -> bytes:
    return b'{"pixels": [[1' + b"0" * 400 + b"]]}"


def large_json(megabytes: float = JSON_MB) -> bytes:
    n = int(megabytes * 1e6 / 4)
    return b'{"pixels": [' + b"255," * (n - 1) + b"255]}"


def all_inputs() -> list[Hostile]:
    """Every hostile request, as the attack benchmark replays them."""
    return [
        Hostile("16-bit PNG 7000x7000", "/api/predict", big_16bit_png(), "image/png"),
        Hostile("float TIFF 6000x6000", "/api/predict", big_float_tiff(), "image/tiff"),
        Hostile("RGBA PNG 7000x7000", "/api/predict", big_rgba_png(), "image/png"),
        Hostile(f"{LINES} thin lines", "/api/read", many_lines_png(), "image/png"),
        Hostile(f"JSON nested {DEEP:,} deep", "/api/predict", deep_json(), "application/json"),
        Hostile(f"JSON {HUGE_DIGITS}-digit integer", "/api/predict", huge_int_json(), "application/json"),
        Hostile("JSON 10**400", "/api/predict", overflow_json(), "application/json"),
        Hostile(f"JSON {JSON_MB} MB", "/api/predict", large_json(), "application/json"),
    ]
