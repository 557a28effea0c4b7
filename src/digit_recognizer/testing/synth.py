"""Realistic test images from MNIST digits: ink on paper with uneven light, texture, noise, JPEG, and numbers.

Used to measure how well real-looking images are read (`benchmarks/paper_sets.py`) and by the tests.
Every image is a deterministic function of its seed.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

INK_COLOURS = ((20, 20, 25), (25, 35, 110), (15, 60, 140), (120, 20, 25), (30, 30, 30))
DRY_CYCLES, DRY_LOW = (1.5, 2.5), 0.2  # a dry pen's ink fades this many times per digit, to this share


def paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float page: base tone, a lighting gradient, a soft shadow and fine texture."""
    base = rng.uniform(175, 245)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = base + rng.uniform(-25, 25) * (xx - 0.5) + rng.uniform(-25, 25) * (yy - 0.5)
    if rng.random() < 0.6:  # a shadow: a wide soft dark blob somewhere on the page
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.2, 0.7)
        light = light - rng.uniform(20, 60) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    texture = ndimage.gaussian_filter(rng.normal(0, rng.uniform(2, 7), (h, w)), 0.8)
    tint = rng.uniform(-6, 6, 3)
    return (light + texture)[..., None] + tint


def ink_alpha(digit: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit as an ink coverage map (0..1), scaled to `height`, thinned or thickened, rotated."""
    a = digit.astype(np.float32) / 255
    a = ndimage.rotate(a, rng.uniform(-8, 8), reshape=True, order=1)
    stroke = rng.choice([-1, 0, 0, 1, 2])  # thin pen .. thick marker
    if stroke > 0:
        a = ndimage.grey_dilation(a, size=(stroke + 1, stroke + 1))
    elif stroke < 0:
        a = np.clip(a * 1.6 - 0.6, 0, 1)
    scale = height / a.shape[0]
    size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
    return np.clip(np.asarray(Image.fromarray(a, mode="F").resize(size, Image.Resampling.BICUBIC)), 0, 1)


def finish(page: np.ndarray, rng: np.random.Generator, invert: bool) -> bytes:
    """Camera noise, optional light-on-dark, and JPEG (or PNG) compression -> file bytes."""
    page = page + rng.normal(0, rng.uniform(1, 6), page.shape)
    if invert:
        page = 255 - page
    img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if rng.random() < 0.8:
        img.save(buf, format="JPEG", quality=int(rng.integers(30, 95)))
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def dry_pen(width: int, digits: int, rng: np.random.Generator) -> np.ndarray:
    """(width,) ink strength of a pen running dry: it fades and returns 1.5-2.5 times per digit along the line,
    down to DRY_LOW of full strength."""
    phase = np.linspace(0, 2 * np.pi * digits * rng.uniform(*DRY_CYCLES), width) + rng.uniform(0, 2 * np.pi)
    return rng.uniform(0.7, 1.0) * (1 - (1 - DRY_LOW) * (1 - np.cos(phase)) / 2)


def compose(digits: list[np.ndarray], rng: np.random.Generator, *, single: bool, tight: bool = False,
            dry: bool = False, strength: float = 1.0) -> bytes:
    """Digits written side by side on a page; `single` places one digit anywhere on a page of any size;
    `tight` crops the page to within a few pixels of the ink (a meter reading cut out of a photo); `dry`
    writes them with a pen running dry; `strength` below 1 lays the ink on lighter (a pencil)."""
    height = int(rng.integers(16, 300)) if single else int(rng.integers(24, 160))
    alphas = [ink_alpha(d, int(height * rng.uniform(0.85, 1.15)), rng) for d in digits]
    gaps = [int(height * rng.uniform(-0.05, 0.35)) for _ in alphas[1:]]  # negative: digits touch
    width = sum(a.shape[1] for a in alphas) + sum(gaps)
    tallest = max(a.shape[0] for a in alphas)
    margin = int(rng.integers(4, 3 * height)) if single else int(rng.integers(4, height))
    margin = int(rng.integers(0, 3)) if tight else margin
    h, w = tallest + 2 * margin + (0 if tight else int(height * 0.3)), width + 2 * margin
    coverage = np.zeros((h, w), np.float32)
    x = margin
    for a, gap in zip(alphas, [0] + gaps):
        x += gap
        y = margin + (0 if tight else int(rng.integers(0, int(height * 0.3) + 1)))
        x = max(0, x)
        region = coverage[y:y + a.shape[0], x:x + a.shape[1]]
        coverage[y:y + a.shape[0], x:x + a.shape[1]] = np.maximum(region, a[:region.shape[0], :region.shape[1]])
        x += a.shape[1]
    if dry:
        coverage *= dry_pen(w, len(digits), rng)[None]
    coverage *= strength
    colour = np.array(INK_COLOURS[int(rng.integers(len(INK_COLOURS)))], np.float32)
    page = paper(rng, h, w)
    page = page * (1 - coverage[..., None]) + colour * coverage[..., None]
    return finish(page, rng, invert=rng.random() < 0.1)


def not_a_digit(rng: np.random.Generator) -> bytes:
    """A blank page or an image of noise: what a recogniser should refuse."""
    h, w = int(rng.integers(28, 600)), int(rng.integers(28, 600))
    kind = rng.integers(4)
    if kind == 0:
        page = paper(rng, h, w)
    elif kind == 1:
        page = rng.uniform(0, 255, (h, w, 1)).repeat(3, 2)
    elif kind == 2:
        page = np.clip(rng.normal(128, 60, (h, w, 1)), 0, 255).repeat(3, 2)
    else:  # salt and pepper on paper
        page = paper(rng, h, w)
        page[rng.random((h, w)) < rng.uniform(0.05, 0.3)] = 20
    return finish(page, rng, invert=False)
