"""Turn a person's image of a digit into an MNIST-style 28x28 uint8 array, the way MNIST itself was made.

Steps: decode safely -> grayscale (alpha over white) -> make ink bright on black -> remove the background
-> crop to the ink -> fit the longer side into DIGIT_BOX keeping the aspect ratio -> centre of mass at the
centre of IMAGE_SIZE x IMAGE_SIZE.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..constants import DIGIT_BOX, IMAGE_SIZE
from ..errors import DigitsError, EmptyInput, NoInk, NotADigit, NotAnImage, TooLarge

MAX_PIXELS = 50_000_000  # decompression-bomb cap: a 7000x7000 photo is allowed, a 100k x 100k PNG is not
MAX_WORKING_SIDE = 1024  # larger images are box-downscaled first; the digit ends up 20 px tall anyway
MIN_CONTRAST = 32  # grey levels between background and ink below which we call the image blank
NOISE_MARGIN = 8  # ... and ink must stand this many noise standard deviations above the paper
BACKGROUND_SIDE = 128  # the background is estimated at about this resolution
MIN_BACKGROUND_SIDE = 40  # below this (e.g. 28x28 crops) the paper level is simply the median
INK_FRACTION = 0.25  # a pixel is ink if it is above this fraction of the ink level
MAIN_STROKES = 5  # a digit's ink lies in a few connected strokes ...
MIN_STROKE_SHARE = 0.6  # ... holding at least this share of all ink; noise and texture scatter it
MIN_NEIGHBOUR_CORRELATION = 0.3  # pen strokes are smooth (>= 0.55 on MNIST and on photos); noise is ~0

ImageInput = Union[str, Path, bytes, Image.Image, np.ndarray]


def open_image(src: ImageInput, name: str = "image") -> Image.Image:
    """Decode a path, bytes, PIL image or array; first frame of animations; checks size before decoding."""
    if isinstance(src, Image.Image):
        img = src
    elif isinstance(src, np.ndarray):
        return array_image(src, name)
    else:
        if isinstance(src, (str, Path)):
            try:
                data = Path(src).read_bytes()
            except FileNotFoundError:
                raise DigitsError(f"{name}: file not found") from None
            except IsADirectoryError:
                raise DigitsError(f"{name}: is a folder, not an image") from None
            except OSError as e:
                raise DigitsError(f"{name}: cannot read ({e.strerror})") from None
        else:
            data = bytes(src)
        if not data:
            raise EmptyInput(f"{name}: empty file")
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise NotAnImage(f"{name}: not an image (or a format Pillow cannot read)") from None
        except Image.DecompressionBombError as e:
            raise TooLarge(f"{name}: image too large ({e})") from None
        except (OSError, ValueError) as e:
            raise NotAnImage(f"{name}: cannot decode image ({e})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise TooLarge(f"{name}: image too large ({w}x{h} = {w * h:,} pixels; the limit is {MAX_PIXELS:,})")
    if w == 0 or h == 0:
        raise EmptyInput(f"{name}: image has no pixels")
    try:
        img.seek(0)  # first frame of a GIF/TIFF stack
        img.load()
    except (OSError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise NotAnImage(f"{name}: truncated or corrupt image data ({e})") from None
    return img


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


def to_gray(img: Image.Image) -> np.ndarray:
    """float32 (H, W) in 0..255; transparency is composited over white (drawing apps leave it clear)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode in ("I", "I;16", "I;16B", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = a.min(), a.max()
        return ((a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)).astype(np.float32)
    img = ImageOps.exif_transpose(img.convert("RGB")).convert("L")
    if max(img.size) > MAX_WORKING_SIDE:
        img = img.copy()
        img.thumbnail((MAX_WORKING_SIDE, MAX_WORKING_SIDE), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32)


def ink_bright(gray: np.ndarray) -> np.ndarray:
    """Make ink bright on a dark background: the border's median tells which side the paper is on."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255.0 - gray if np.median(border) > 127.5 else gray


def estimate_background(x: np.ndarray) -> np.ndarray:
    """The paper's brightness at every pixel (ink bright): a grey opening wider than any stroke, done on a
    coarse copy because lighting and shadows vary slowly. Strokes narrower than a quarter of the image vanish.
    """
    from scipy import ndimage

    step = max(1, max(x.shape) // BACKGROUND_SIDE)
    small = x[: x.shape[0] // step * step, : x.shape[1] // step * step]
    small = small.reshape(small.shape[0] // step, step, small.shape[1] // step, step).mean((1, 3))
    k = max(3, min(small.shape) // 4)
    bg = ndimage.uniform_filter(ndimage.grey_opening(small, size=(k, k)), size=k)
    return np.asarray(Image.fromarray(bg.astype(np.float32), mode="F").resize(x.shape[::-1],
                                                                            Image.Resampling.BILINEAR))


def remove_background(x: np.ndarray, name: str) -> np.ndarray:
    """Subtract the (possibly uneven) paper level and stretch the ink to 255; raise NoInk if nothing stands
    out of the paper's own noise (texture, grain, JPEG) by a clear margin.
    """
    from scipy import ndimage

    y = x - (estimate_background(x) if min(x.shape) >= MIN_BACKGROUND_SIDE else np.median(x))
    smooth = ndimage.gaussian_filter(y, 1.0)
    noise = 1.4826 * float(np.median(np.abs(smooth - np.median(smooth))))
    peak = float(smooth.max())
    if peak < max(MIN_CONTRAST, NOISE_MARGIN * noise):
        raise NoInk(f"{name}: no ink found (blank or nearly uniform image)")
    y = np.clip(y, 0, None)
    ink = float(np.percentile(y[smooth > peak / 2], 90))
    return np.clip(y * (255.0 / max(ink, 1.0)), 0, 255)


def neighbour_correlation(x: np.ndarray) -> float:
    """Mean correlation of each pixel with its right and lower neighbours."""
    pairs = [(x[:, :-1], x[:, 1:]), (x[:-1], x[1:])]
    cs = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in pairs if a.size > 1]
    return float(np.nanmean(cs)) if cs else 0.0


def check_strokes(x: np.ndarray, mask: np.ndarray, name: str) -> None:
    """Refuse what is not pen strokes: pixel noise (no spatial coherence), or ink scattered over many small
    pieces (texture, dirt)."""
    from scipy import ndimage

    if neighbour_correlation(x) < MIN_NEIGHBOUR_CORRELATION:
        raise NotADigit(f"{name}: not a digit (the ink has no stroke structure: noise)")
    labels, n = ndimage.label(mask)  # 4-connectivity: random specks rarely join up
    if n <= MAIN_STROKES:
        return
    sizes = np.sort(np.bincount(labels.ravel())[1:])[::-1]
    if sizes[:MAIN_STROKES].sum() < MIN_STROKE_SHARE * sizes.sum():
        raise NotADigit(f"{name}: not a digit (ink scattered over {n} pieces: noise or texture)")


def crop_to_ink(x: np.ndarray, name: str) -> np.ndarray:
    mask = x > INK_FRACTION * 255
    if not mask.any():
        raise NoInk(f"{name}: no ink found")
    check_strokes(x, mask, name)
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def fit_and_centre(x: np.ndarray) -> np.ndarray:
    """Scale so the longer side is DIGIT_BOX, then place the centre of mass at the canvas centre."""
    from scipy import ndimage

    h, w = x.shape
    s = DIGIT_BOX / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    img = Image.fromarray(x.astype(np.float32), mode="F").resize((nw, nh), Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(img), 0, 255)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    cy, cx = ndimage.center_of_mass(small) if small.sum() > 0 else (nh / 2, nw / 2)
    top = int(round(IMAGE_SIZE / 2 - cy))
    left = int(round(IMAGE_SIZE / 2 - cx))
    top, left = min(max(top, 0), IMAGE_SIZE - nh), min(max(left, 0), IMAGE_SIZE - nw)
    canvas[top:top + nh, left:left + nw] = small
    return np.rint(canvas).astype(np.uint8)


def is_mnist_like(gray: np.ndarray) -> bool:
    """Already 28x28 with a dark background: pass through untouched."""
    return gray.shape == (IMAGE_SIZE, IMAGE_SIZE) and np.median(gray) < 127.5


def preprocess(src: ImageInput, name: str = "image") -> np.ndarray:
    """Any supported image -> (28, 28) uint8, ink 255 on background 0."""
    if isinstance(src, (str, Path)):
        name = str(src)
    gray = to_gray(open_image(src, name))
    if is_mnist_like(gray):
        if gray.max() < MIN_CONTRAST:
            raise NoInk(f"{name}: no ink found (blank image)")
        return gray.astype(np.uint8)
    x = remove_background(ink_bright(gray), name)
    return fit_and_centre(crop_to_ink(x, name))
