"""Digits framed the ways people hand them over: tight crops, bold and thin pens, low resolution enlarged (smooth
or blocky), chalkboards, coloured ink, transparent PNGs, 16-bit, palette and CMYK files, rotated phone photos, tall
and flat digits, lined and squared paper, a form's box, a light pencil, faded pictures. Each presentation draws all
its parameters at random from its seed.

    make(name, digit, rng) -> file bytes        # digit: an MNIST (28, 28) uint8 array, ink bright

Used by `benchmarks/paper_sets.py` to measure every presentation and by the tests.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

from ..constants import DIGIT_BOX, MNIST_STROKE
from ..inference.reader import PARAMS
from ..inference.reader.masks import WIDTH_PERCENTILE
from .synth import INK_COLOURS, paper

UPSAMPLE = 4  # strokes are re-drawn on a 4x finer grid, where MNIST's ~2.5 px strokes are ~10 px wide
INK_LEVEL = PARAMS.ink.inside  # coverage (0..1) above which a pixel of the fine grid is inside a stroke
EXIF_ORIENTATION = 0x0112
OPAQUE_SHARE = 0.7  # transparent PNGs whose ink is opaque; the rest are drawn at PART_OPACITY (uniform)
PART_OPACITY = (0.3, 0.95)
FADED_CONTRAST = (0.08, 0.3)  # a faded picture keeps this share of its contrast (uniform)
# EXIF orientation value -> the transpose that turns the viewer's picture into the stored pixels.
STORED_AS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def restroke(a: np.ndarray, factor: float, pen: float | None = None) -> np.ndarray:
    """Coverage (0..1) with every stroke `factor` times as wide, or, given `pen`, as wide as `pen` times MNIST's
    median stroke (MNIST_STROKE), anti-aliased, on the UPSAMPLE-times finer grid."""
    h, w = a.shape
    pad = int(np.ceil(max(factor, 1, pen or 0) * 3))  # room for the strokes to grow, in MNIST pixels
    big = Image.fromarray(np.pad(a, pad), mode="F").resize(((w + 2 * pad) * UPSAMPLE, (h + 2 * pad) * UPSAMPLE),
                                                          Image.Resampling.BICUBIC)
    inside = np.asarray(big) > INK_LEVEL
    if not inside.any():
        return np.asarray(big).clip(0, 1)
    signed = ndimage.distance_transform_edt(inside) - ndimage.distance_transform_edt(~inside)  # + inside
    half = np.percentile(signed[inside], WIDTH_PERCENTILE)  # half the stroke width, fine px
    target = half * factor if pen is None else pen * MNIST_STROKE * UPSAMPLE / 2
    return np.clip(signed + target - half + 0.5, 0, 1)


def glyph(digit: np.ndarray, rng: np.random.Generator, height: int, *, stroke: float = 1.0,
          pen: float | None = None, aspect: float = 1.0) -> np.ndarray:
    """The digit's ink coverage (0..1), tilted a little, cropped to its ink, `height` px tall and `aspect` times
    as wide as written; strokes `stroke` times the digit's own, or a `pen` that many times MNIST's."""
    a = restroke(digit.astype(np.float32) / 255, stroke, pen)
    a = ndimage.rotate(a, rng.uniform(-6, 6), reshape=True, order=1)
    rows, cols = np.nonzero(a.max(1) > 0.05)[0], np.nonzero(a.max(0) > 0.05)[0]
    a = np.ascontiguousarray(a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], np.float32)
    width = max(1, round(a.shape[1] * height / a.shape[0] * aspect))
    return np.clip(np.asarray(Image.fromarray(a, mode="F").resize((width, height), Image.Resampling.BOX)), 0, 1)


def framed(cov: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A margin of lo..hi digit-pixels (a 20th of the digit's height, as in MNIST), drawn per side."""
    unit = cov.shape[0] / DIGIT_BOX
    top, bottom, left, right = (int(round(rng.uniform(lo, hi) * unit)) for _ in range(4))
    return np.pad(cov, ((top, bottom), (left, right)))


def on_paper(cov: np.ndarray, rng: np.random.Generator, ink=None, page=None) -> np.ndarray:
    """(h, w, 3) float RGB: ink laid over paper (or over `page`, a colour or an image), with camera noise."""
    h, w = cov.shape
    ink = np.array(INK_COLOURS[int(rng.integers(len(INK_COLOURS)))] if ink is None else ink, np.float32)
    page = paper(rng, h, w) if page is None else np.broadcast_to(np.asarray(page, np.float32), (h, w, 3))
    out = page * (1 - cov[..., None]) + ink * cov[..., None]
    return np.clip(out + rng.normal(0, rng.uniform(0.5, 4), out.shape), 0, 255)


def encode(img: Image.Image, rng: np.random.Generator, fmt: str | None = None, **kw) -> bytes:
    fmt = fmt or ("JPEG" if rng.random() < 0.5 else "PNG")
    if fmt == "JPEG":
        kw.setdefault("quality", int(rng.integers(60, 96)))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rgb(page: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(page).astype(np.uint8), "RGB")


def size(rng: np.random.Generator) -> int:
    return int(rng.integers(16, 301))


def tight(d, rng):  # cut out by another program: margin 0-2 digit-pixels, either polarity
    page = on_paper(framed(glyph(d, rng, size(rng), stroke=rng.uniform(0.8, 1.3)), rng, 0, 2), rng)
    return encode(rgb(255 - page if rng.random() < 0.3 else page), rng)


def bold(d, rng, lo=0.0, hi=2.0):  # a fat marker, strokes 2-4x MNIST's
    return encode(rgb(on_paper(framed(glyph(d, rng, size(rng), pen=rng.uniform(2, 4)), rng, lo, hi), rng)), rng)


def thin(d, rng, lo=0.0, hi=2.0):  # a fine pen, strokes 0.35-0.6x the digit's own
    return encode(rgb(on_paper(framed(glyph(d, rng, size(rng), stroke=rng.uniform(0.35, 0.6)), rng, lo, hi),
                               rng)), rng)


def lowres(d, rng, methods=(Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)):
    """A 8-14 px digit from a scan, enlarged (blurry, filling the frame; blocky with nearest-neighbour)."""
    small = on_paper(framed(glyph(d, rng, int(rng.integers(8, 15))), rng, 0, 2), rng)
    target = size(rng) + 24
    scale = target / small.shape[0]
    method = methods[int(rng.random() * len(methods))]
    big = rgb(small).resize((max(1, round(small.shape[1] * scale)), target), method)
    return encode(big, rng, "PNG" if method == Image.Resampling.NEAREST else None)


def chalkboard(d, rng):  # light chalk, with gaps in the strokes, on a dark board
    cov = framed(glyph(d, rng, size(rng), stroke=rng.uniform(1, 2)), rng, 0, 6)
    cov = cov * np.clip(rng.normal(0.85, 0.2, cov.shape), 0, 1)
    board = rng.choice([(30, 60, 40), (35, 35, 38), (20, 40, 45)]) + rng.uniform(-10, 10, 3)
    return encode(rgb(on_paper(cov, rng, ink=rng.uniform(200, 250, 3), page=board)), rng)


def coloured(d, rng):  # coloured ink on tinted paper
    hue = rng.random()
    ink = np.array(Image.new("HSV", (1, 1), (int(hue * 255), int(rng.uniform(150, 255)),
                                             int(rng.uniform(90, 200)))).convert("RGB").getpixel((0, 0)))
    tint = np.array(Image.new("HSV", (1, 1), (int(rng.random() * 255), int(rng.uniform(30, 90)),
                                              int(rng.uniform(215, 255)))).convert("RGB").getpixel((0, 0)))
    return encode(rgb(on_paper(framed(glyph(d, rng, size(rng)), rng, 0, 6), rng, ink=ink, page=tint)), rng)


def transparent(d, rng):  # RGBA: ink of any colour, fully transparent background
    cov = framed(glyph(d, rng, size(rng), stroke=rng.uniform(0.8, 2)), rng, 0, 6)
    colour = rng.integers(0, 256, 3) if rng.random() < 0.6 else rng.choice([(0, 0, 0), (255, 255, 255)])
    under = (0, 0, 0) if rng.random() < 0.5 else colour  # what the clear pixels' colour channels hold
    # Most ink is opaque; a soft brush or a layer saved at part opacity is nowhere opaque.
    opacity = 1.0 if rng.random() < OPAQUE_SHARE else rng.uniform(*PART_OPACITY)
    px = np.where(cov[..., None] > 0, np.asarray(colour), np.asarray(under))
    rgba = np.dstack([px, np.rint(cov * opacity * 255)]).astype(np.uint8)
    return encode(Image.fromarray(rgba, "RGBA"), rng, "PNG")


def gray16(d, rng):  # 16-bit grayscale PNG (scanners, microscopes)
    page = on_paper(framed(glyph(d, rng, size(rng)), rng, 0, 6), rng).mean(2)
    return encode(Image.fromarray(np.rint(page * 257).astype(np.uint16)), rng, "PNG")


def palette(d, rng):  # palette PNG, as GIF-era tools and some scanners write
    page = rgb(on_paper(framed(glyph(d, rng, size(rng)), rng, 0, 6), rng))
    return encode(page.quantize(colors=int(rng.integers(4, 65))), rng, "PNG")


def cmyk(d, rng):  # CMYK JPEG, as print workflows write
    page = rgb(on_paper(framed(glyph(d, rng, size(rng)), rng, 0, 6), rng))
    return encode(page.convert("CMYK"), rng, "JPEG")


def exif_rotated(d, rng):  # a phone photo stored sideways or upside down, with the EXIF tag that fixes it
    page = rgb(on_paper(framed(glyph(d, rng, size(rng)), rng, 1, 8), rng))
    orientation = int(rng.choice(list(STORED_AS)))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(page.transpose(STORED_AS[orientation]), rng, "JPEG", exif=exif.tobytes())


def tall(d, rng):  # narrow and tall: a 1 written as a bar, a squeezed 0
    return encode(rgb(on_paper(framed(glyph(d, rng, size(rng), aspect=rng.uniform(0.35, 0.65)), rng, 0, 4),
                               rng)), rng)


def wide(d, rng):  # flat and wide: a 7 dashed off, a squashed 4
    cov = glyph(d, rng, max(12, size(rng) // 2), aspect=rng.uniform(1.6, 2.8))
    return encode(rgb(on_paper(framed(cov, rng, 0, 4), rng)), rng)


def faint(d, rng):  # a light pencil: strokes a fifth to half as dark as a pen's, with a margin
    cov = framed(glyph(d, rng, size(rng), stroke=rng.uniform(0.6, 1.2)), rng, 2, 10)
    return encode(rgb(on_paper(cov * rng.uniform(0.2, 0.5), rng, ink=rng.uniform(30, 70, 3))), rng)


def faded(d, rng):  # a faded photocopy or scan, a light-grey drawing: the whole picture at 8-30% of its contrast
    page = on_paper(framed(glyph(d, rng, size(rng)), rng, 0, 10), rng)
    grey = rng.uniform(60, 200)  # what the picture fades towards
    return encode(rgb(np.clip(grey + (page - page.mean()) * rng.uniform(*FADED_CONTRAST), 0, 255)), rng)


RULING_COLOURS = ((150, 185, 230), (120, 160, 220), (175, 175, 175), (230, 150, 150))  # blue, grey, red lines


def ruled_page(rng: np.random.Generator, h: int, w: int, spacing: float, columns: bool) -> np.ndarray:
    """(h, w, 3) paper with printed lines every `spacing` px across it (and down it, for squared paper), 1-3 px
    wide, as a scanner or a form-filling program keeps them: straight along the rows and columns."""
    page = paper(rng, h, w).copy()
    colour = np.array(RULING_COLOURS[int(rng.integers(len(RULING_COLOURS)))], np.float32)
    alpha, width, start = rng.uniform(0.4, 1.0), int(rng.integers(1, 4)), rng.uniform(0, spacing)
    lines = np.zeros((h, w), bool)
    for at in np.arange(start, h, spacing).astype(int):
        lines[at:at + width] = True
    if columns:
        for at in np.arange(start, w, spacing).astype(int):
            lines[:, at:at + width] = True
    page[lines] = page[lines] * (1 - alpha) + colour * alpha
    return page


def lined(d, rng, squared=False):  # on lined or squared paper, cut out with a margin
    cov = framed(glyph(d, rng, size(rng)), rng, 2, 10)
    spacing = cov.shape[0] * (rng.uniform(0.2, 0.6) if squared else rng.uniform(0.5, 1.2))
    return encode(rgb(on_paper(cov, rng, page=ruled_page(rng, *cov.shape, spacing, squared))), rng)


def form_colour(rng: np.random.Generator) -> np.ndarray:
    """A form's printed lines: a ruling colour, or ink black."""
    pick = RULING_COLOURS[int(rng.integers(len(RULING_COLOURS)))] if rng.random() < 0.5 else INK_COLOURS[0]
    return np.array(pick, np.float32)


def boxed(d, rng):  # a form's box cut out with the digit: its lines along the crop's edges, or just inside
    cov = framed(glyph(d, rng, size(rng)), rng, 1, 6)
    h, w = cov.shape
    page = paper(rng, h, w).copy()
    colour = form_colour(rng)
    width = max(1, round(rng.uniform(0.01, 0.03) * h))
    line = np.zeros((h, w), bool)
    for side in range(4):
        if rng.random() < 0.85:
            at = int(rng.uniform(0, 0.07) * h)
            edge = (slice(at, at + width), slice(h - at - width, h - at), slice(None), slice(None))[side]
            cols = (slice(None), slice(None), slice(at, at + width), slice(w - at - width, w - at))[side]
            line[edge, cols] = True
    page[line] = colour
    return encode(rgb(on_paper(cov, rng, page=page)), rng)


def in_comb(digits: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """A number written in a form's comb: one box per digit, the field cut out along its outer lines."""
    height = int(rng.integers(24, 120))
    cell, tall = int(height * rng.uniform(0.9, 1.3)), int(height * rng.uniform(1.15, 1.5))
    width = max(1, round(rng.uniform(0.01, 0.03) * tall))
    cov = np.zeros((tall, cell * len(digits) + width), np.float32)
    for j, d in enumerate(digits):
        g = glyph(d, rng, height)[:, :cell - 2 * width]
        top, left = (tall - g.shape[0]) // 2, j * cell + (cell - g.shape[1]) // 2
        cov[top:top + g.shape[0], left:left + g.shape[1]] = g
    page = paper(rng, *cov.shape).copy()
    line = np.zeros(cov.shape, bool)
    line[:width], line[-width:] = True, True
    for j in range(len(digits) + 1):
        line[:, j * cell:j * cell + width] = True
    page[line] = form_colour(rng)
    return encode(rgb(on_paper(cov, rng, page=page)), rng)


PRESENTATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], bytes]] = {
    "tight": tight, "bold-tight": bold, "bold-margin": lambda d, r: bold(d, r, 2, 10),
    "thin-tight": thin, "thin-margin": lambda d, r: thin(d, r, 2, 10), "lowres": lowres,
    "chalkboard": chalkboard, "coloured": coloured, "transparent": transparent, "gray16": gray16,
    "palette": palette, "cmyk": cmyk, "exif-rotated": exif_rotated, "tall": tall, "wide": wide,
    "ruled": lined, "squared": lambda d, r: lined(d, r, squared=True),
    "lowres-blocky": lambda d, r: lowres(d, r, (Image.Resampling.NEAREST,)), "boxed": boxed, "faint": faint,
    "faded": faded,
}


def make(name: str, digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return PRESENTATIONS[name](digit, rng)
