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

from .constants import DIGIT_BOX, IMAGE_SIZE
from .errors import DigitsError, EmptyInput, NoInk, NotADigit, NotAnImage, TooLarge

MAX_PIXELS = 50_000_000  # decompression-bomb cap: a 7000x7000 photo is allowed, a 100k x 100k PNG is not
MAX_WORKING_SIDE = 1024  # larger images are box-downscaled first; the digit ends up 20 px tall anyway
MIN_CONTRAST = 24  # grey levels between background and ink below which we call the image blank
INK_FRACTION = 0.25  # a pixel is ink if it is above this fraction of the ink level
MAIN_STROKES = 5  # a digit's ink lies in a few connected strokes ...
MIN_STROKE_SHARE = 0.6  # ... holding at least this share of all ink; noise and texture scatter it

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


def remove_background(x: np.ndarray, name: str) -> np.ndarray:
    """Subtract the paper level and stretch the ink to 255. Raises if there is no ink.

    The paper level is the image median: ink covers a minority of pixels in any picture of a digit.
    """
    y = np.clip(x - np.median(x), 0, None)
    ink = float(np.percentile(y[y > 0], 99)) if (y > 0).any() else 0.0
    if ink < MIN_CONTRAST:
        raise NoInk(f"{name}: no ink found (blank or nearly uniform image)")
    return np.clip(y * (255.0 / ink), 0, 255)


def check_strokes(mask: np.ndarray, name: str) -> None:
    """Refuse ink scattered over many small pieces (noise, paper texture): it is not a handwritten digit."""
    from scipy import ndimage

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
    check_strokes(mask, name)
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
