"""Step 1, decode: any image a person hands over -> float32 grey levels at the working size.

Decoded safely (size checked before decoding, regular files only), shrunk first whatever its mode (a JPEG is
decoded at a reduced scale straight away), turned as its EXIF tag says, transparency laid over a backdrop the ink
stands out from, colour reduced to the axis that separates ink from paper, a nearest-neighbour enlargement undone
(blocks) and a tiny image enlarged.

    decode(src, params, name) -> (gray (h, w) float32 0..255, facts)
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...constants import IMAGE_SIZE
from ...data.formats import read_regular_file
from ...errors import EmptyInput, NotAnImage, TooLarge
from .blocks import unblocked
from .kinds import not_an_image
from .ops import f32, resized
from .stats import median, percentiles
from .params import Decode, ReaderParams

MAX_PIXELS = 50_000_000  # decompression-bomb cap: a 7000x7000 photo is allowed, a 100k x 100k PNG is not
MAX_FILE_BYTES = 64 << 20  # an image file larger than this is refused before it is read
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 brightness, as Pillow's "L" conversion
MID_GREY = 127.5
ROUNDING = 1e-2  # grey levels: far above float32's rounding of a colour's brightness (about 1e-4)
REDUCING_GAP = 2.0  # a large image is first reduced by a whole factor in blocks (fast), to at least 2x its size
REDUCIBLE = ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK")
EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose, which would turn
# the full-size image before it is shrunk).
ORIENTATION_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                         4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                         6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}

ImageInput = Union[str, Path, bytes, Image.Image, np.ndarray]


def open_image(src: ImageInput, name: str = "image") -> Image.Image:
    """Decode a path, bytes, PIL image or array; first frame of animations; checks size before decoding."""
    return loaded(unopened(src, name), name)


def unopened(src: ImageInput, name: str = "image") -> Image.Image:
    """A path, bytes, PIL image or array as an image whose size is checked and whose pixels are not yet decoded
    (an array's are at hand)."""
    if isinstance(src, Image.Image):
        img = src
    elif isinstance(src, np.ndarray):
        return array_image(src, name)
    else:
        if isinstance(src, (str, Path)):
            data = read_regular_file(src, MAX_FILE_BYTES, name)
        else:
            data = bytes(src)
        if not data:
            raise EmptyInput(f"{name}: empty file")
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise NotAnImage(f"{name}: {not_an_image(data)}") from None
        except Image.DecompressionBombError as e:
            raise TooLarge(f"{name}: image too large ({e})") from None
        except (OSError, ValueError) as e:
            raise NotAnImage(f"{name}: cannot decode image ({e})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise TooLarge(f"{name}: image too large ({w}x{h} = {w * h:,} pixels; the limit is {MAX_PIXELS:,})")
    if w == 0 or h == 0:
        raise EmptyInput(f"{name}: image has no pixels")
    return img


def loaded(img: Image.Image, name: str = "image", side: int | None = None) -> Image.Image:
    """The image's pixels decoded (its first frame). A JPEG larger than `side` px is decoded at the smallest of
    1/2 .. 1/8 scale that is still at least `side`: a phone's photo costs an eighth of its full decoding."""
    if side is not None and img.format == "JPEG" and max(img.size) > side:
        img.draft(img.mode, tuple(max(1, s * side // max(img.size)) for s in img.size))  # a no-op once loaded
    try:
        img.seek(0)  # first frame of a GIF/TIFF stack
        img.load()
    except (OSError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise NotAnImage(f"{name}: truncated or corrupt image data ({e})") from None
    return img


def image_pixels(data: bytes) -> int:
    """Pixels the image in `data` will decode to, from its header alone (0 if it is not an image Pillow knows):
    lets a server bound a request's work before decoding anything."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size[0] * img.size[1]
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, EOFError):
        return 0


def array_image(a: np.ndarray, name: str) -> Image.Image:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[..., 0] if a.shape[-1] == 1 else a
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))) or a.size == 0:
        raise NotAnImage(f"{name}: array of shape {a.shape} is not an image")
    if a.size > MAX_PIXELS:
        raise TooLarge(f"{name}: array too large ({a.size:,} values)")
    if a.dtype != np.uint8:
        a = np.asarray(a, dtype=np.float64)
        if not np.isfinite(a).all():
            raise NotAnImage(f"{name}: array contains NaN or infinity")
        # Floats in [0, 1] are scaled; anything else is taken as 0..255 and clipped.
        a = a * 255.0 if a.max(initial=0) <= 1.0 else a
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def to_gray(img: Image.Image, p: Decode = Decode()) -> np.ndarray:
    """float32 (H, W) in 0..255, at most p.working_side px on a side, turned the way a viewer shows it (EXIF
    orientation). Every mode is shrunk before anything else is computed, so a small file that decodes to a
    large 16-bit, float or transparent image costs no more memory than its decoded pixels."""
    orientation = img.getexif().get(EXIF_ORIENTATION_TAG)
    img = working_copy(img, p.working_side)
    if orientation in ORIENTATION_TRANSPOSE:
        img = img.transpose(ORIENTATION_TRANSPOSE[orientation])
    if img.mode in ("RGBA", "LA", "PA"):
        img = flatten_alpha(img.convert("RGBA"), p)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = a.min(), a.max()
        return ((a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)).astype(np.float32)
    if img.mode not in ("L", "1"):
        img = img.convert("RGB")
    if img.mode == "RGB":
        return colour_to_gray(img, p)
    return np.asarray(img.convert("L"), dtype=np.float32)


def working_copy(img: Image.Image, side: int) -> Image.Image:
    """img box-averaged to at most `side` px on its longer side, in its own mode (palette and bilevel images are
    first expanded, since shrinking those would drop pixels instead of averaging)."""
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if max(img.size) <= side:
        return img
    f = side / max(img.size)  # a sliver of an image keeps at least one row or column
    gap = REDUCING_GAP if img.mode in REDUCIBLE else None  # Pillow reduces in blocks in these modes only
    return img.resize(tuple(max(1, round(side * f)) for side in img.size), Image.Resampling.BOX, reducing_gap=gap)


def colour_to_gray(img: Image.Image, p: Decode) -> np.ndarray:
    """An RGB image -> (H, W) float32 grey levels in which ink and paper differ most. Usually that is brightness; but
    green ink on pink paper, say, differs in hue at almost equal brightness, so where the colours' main axis
    of variation (their first principal component) separates them much better, that axis is used instead."""
    rgb = np.asarray(img)  # (H, W, 3) uint8
    step = (max(1, rgb.shape[0] // p.colour_side), max(1, rgb.shape[1] // p.colour_side))
    axis = hue_axis(rgb[::step[0], ::step[1]].reshape(-1, 3).astype(np.float32), p)
    if axis is None:
        return np.asarray(img.convert("L"), np.float32)  # brightness, LUMA in Pillow's own C
    proj = rgb.astype(np.float32) @ axis.astype(np.float32)
    return proj - 255.0 * float(np.minimum(axis, 0).sum())  # into 0..255


def hue_axis(flat: np.ndarray, p: Decode) -> np.ndarray | None:
    """The colours' main axis (main_axis) of colours (n, 3) where its spread beats brightness's p.hue_gain times
    over, else None. Two bounds on the axis's spread decide most photos (their colours lie near the grey axis)
    before it is measured: no more than the widest channel's range (an L1-normalised axis moves a level by at
    most the largest change of a channel), and no more than brightness's spread plus twice the furthest any
    level on the axis lies from its brightness."""

    def spread(v: np.ndarray) -> float:
        return float(np.subtract(*percentiles(v, (p.spread_percentile, 100 - p.spread_percentile))))

    brightness = spread(flat @ np.array(LUMA, np.float32))

    def keep(bound: float) -> bool:  # the axis's spread cannot win
        return bound + ROUNDING <= p.hue_gain * brightness

    channels = np.ascontiguousarray(flat.T)  # (3, n): a reduction along contiguous rows, 20x one down columns
    if keep(float((channels.max(1) - channels.min(1)).max())):
        return None
    axis = main_axis(flat)
    apart = float(np.abs(flat @ (axis - np.array(LUMA))).max())
    if keep(brightness + 2 * apart) or spread(flat @ axis) <= p.hue_gain * brightness:
        return None
    return axis


def main_axis(flat: np.ndarray) -> np.ndarray:
    """(3,) float64: the first principal component of colours (n, 3), L1-normalised and pointing up the grey
    axis, so that it maps grey v to v."""
    centred = np.array(flat.T, np.float64, order="C")  # (3, n): contiguous rows are fast to sum and dot
    centred -= (centred.sum(1) / flat.shape[0])[:, None]  # the mean, exact: sums of whole numbers
    cov = np.array([[np.dot(a, b) for b in centred] for a in centred]) / max(1, flat.shape[0] - 1)
    _, vectors = np.linalg.eigh(cov)  # (3, 3): the main axis is the last column
    main = vectors[:, -1] * (1 if vectors[:, -1].sum() >= 0 else -1)
    return main / max(float(np.abs(main).sum()), 1e-6)


def flatten_alpha(rgba: Image.Image, p: Decode) -> Image.Image:
    """Lay an image with transparency over a backdrop that its most opaque pixels (the ink) stand out from:
    white under dark ink, black under light ink. The ink is what is opaque or, where nothing is (a soft brush, a
    layer saved at part opacity), what is at least p.inked_share as opaque as the most opaque pixel. The colour of
    clear pixels is arbitrary, so it is never used."""
    a = np.asarray(rgba)
    alpha = a[..., 3]
    if (alpha >= p.opaque).all():
        return rgba.convert("RGB")
    top = int(alpha.max())
    inked = alpha >= (p.opaque if top >= p.opaque else max(1, p.inked_share * top))  # (H, W) bool; none if all clear
    lum = np.asarray(rgba.convert("RGB").convert("L"), np.float32)
    ink_lum = float(np.average(lum[inked], weights=alpha[inked])) if inked.any() else 0.0
    backdrop = (0, 0, 0, 255) if ink_lum > MID_GREY else (255, 255, 255, 255)
    return Image.alpha_composite(Image.new("RGBA", rgba.size, backdrop), rgba).convert("RGB")


def is_mnist_like(gray: np.ndarray) -> bool:
    """Already 28x28 with a dark background: read as it is."""
    return gray.shape == (IMAGE_SIZE, IMAGE_SIZE) and median(gray) < MID_GREY


def enlarged(gray: np.ndarray, side: int) -> np.ndarray:
    """A tiny image (a digit cut out at 15 px, say) enlarged (bicubic) to `side` on its longer side: at a few px
    per stroke, edges are most of the image and would be taken for noise the ink cannot stand out of."""
    if max(gray.shape) >= side:
        return gray
    f = side / max(gray.shape)
    size = (max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f)))
    return np.clip(resized(gray, size, Image.Resampling.BICUBIC), 0, 255)


def decode(src: ImageInput, params: ReaderParams, name: str = "image") -> tuple[np.ndarray, dict]:
    """The decode step: the image's grey levels at the working size, and what it found: the size as given,
    whether it was already an MNIST-style digit (then nothing else is done to it), whether it was a blocky
    enlargement, and the scale (working px per px of the image as given)."""
    img = unopened(src, name)
    given = img.size  # (w, h) as handed over: a JPEG may decode smaller
    img = loaded(img, name, params.decode.working_side)
    gray = to_gray(img, params.decode)
    facts = {"size": list(given)}
    if is_mnist_like(gray):
        return gray, {**facts, "mnist_like": True, "scale": 1.0}
    small = unblocked(gray, params.decode)
    work = f32(enlarged(small, params.decode.min_side))
    # The longer sides match whatever EXIF turned and however much a large image was shrunk.
    return work, {**facts, "mnist_like": False, "unblocked": small.shape != gray.shape,
                  "scale": max(work.shape) / max(given)}
