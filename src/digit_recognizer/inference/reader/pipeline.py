"""The reader: an image -> what the model reads, in named steps, each a function of (image, params, facts seen so
far) that returns the image and the facts it found.

    decode -> polarity -> background -> lines -> crop -> strokes -> fit -> views

`read_digit` runs them for one digit (predict), `read_marks` for every digit of a number (read): the same steps
in the same order, the last three once per digit. Given a Trace, every step's output and facts are recorded.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import DigitsError, NoInk, Refusal
from .background import background
from .crop import Cut, crop, levelled
from .decode import ImageInput, decode
from .fit import Views, fit, strokes, views
from .lines import lines
from .ops import one_blas_thread
from .params import PARAMS, ReaderParams
from .polarity import polarity

MS = 1000.0  # ms per second: a step's time in a trace
PAGE_STEPS: tuple[tuple[str, Callable], ...] = (("polarity", polarity), ("background", background), ("lines", lines))
DIGIT_STEPS: tuple[tuple[str, Callable], ...] = (("strokes", strokes), ("fit", fit), ("views", views))
STEPS = ("decode", *(n for n, _ in PAGE_STEPS), "crop", *(n for n, _ in DIGIT_STEPS))


@dataclass(frozen=True)
class Stage:
    """One step as it ran: its name, what it returned (an image, a stack of them, or Views), and its facts."""
    step: str
    output: object
    facts: dict
    digit: int | None = None  # which digit of a number, for the per-digit steps
    ms: float = 0.0  # how long the step took


@dataclass
class Trace:
    """Every step's output and facts, in the order they ran; `refused` says why the reader stopped, if it did."""
    stages: list[Stage] = field(default_factory=list)
    refused: str | None = None

    @property
    def steps(self) -> list[str]:
        return [s.step for s in self.stages]


@dataclass(frozen=True)
class Segment:
    """One digit of a number: its box (x, y, w, h) in the image's own px, its views, for a part of a group split
    as touching digits the whole group read as one digit, `joins`: (stop, this mark and the next ones up to
    stop-1 read as one digit), the other reading of a digit whose faded ink fell apart, and `levelled`: makes the
    views of its cut levelled when called (a pen's digit whose ink faded along its strokes; crop.levelled), for
    the few digits the model refuses as cut."""
    box: tuple[int, int, int, int]
    views: Views
    whole: "Segment | None" = None
    joins: tuple[tuple[int, "Segment"], ...] = ()
    levelled: Callable[[], Views] | None = None


def named(e: DigitsError, name: str) -> DigitsError:
    """The same error with the image's name in front (steps do not know it)."""
    text = str(e)
    return e if text.startswith(f"{name}: ") else type(e)(f"{name}: {text}")


def run(step: str, fn: Callable, x, params: ReaderParams, seen: dict, trace: Trace | None, digit: int | None = None):
    start = time.perf_counter()
    try:
        out, facts = fn(x, params, seen)
    except Refusal as e:
        if trace is not None:
            trace.refused = f"{step}: {e}"
        raise
    seen.update(facts)
    if trace is not None:  # "_name": what a step hands on to a later one, not a fact to show
        shown = {k: v for k, v in facts.items() if not k.startswith("_")}
        trace.stages.append(Stage(step, out, shown, digit, (time.perf_counter() - start) * MS))
    return out


def page(src: ImageInput, params: ReaderParams, name: str, trace: Trace | None,
         as_is: bool = False) -> tuple[np.ndarray, dict]:
    """decode, polarity, background and lines: the image's ink alone, bright on black, and the facts so far.
    With `as_is`, an image that already is an MNIST-style digit is returned as decoded."""
    start = time.perf_counter()
    gray, seen = decode(src, params, name)  # a path names itself
    if trace is not None:
        trace.stages.append(Stage("decode", gray, dict(seen), ms=(time.perf_counter() - start) * MS))
    if as_is and seen["mnist_like"]:
        return gray, seen
    x = gray
    for step, fn in PAGE_STEPS:
        x = run(step, fn, x, params, seen, trace)
    return x, seen


def digit_steps(c: Cut, params: ReaderParams, seen: dict, trace: Trace | None, index: int | None = None) -> Views:
    """strokes, fit and views for one digit's crop."""
    x, facts = c.image, dict(seen)
    for step, fn in DIGIT_STEPS:
        x = run(step, fn, x, params, facts, trace, index)
    return x


def read_digit(src: ImageInput, params: ReaderParams = PARAMS, name: str = "image",
               trace: Trace | None = None) -> Views:
    """One digit's Views, through every step; raises a Refusal (blank, noise, a speck or a dash, several
    digits)."""
    name = str(src) if isinstance(src, (str, Path)) else name
    try:
        with one_blas_thread():
            x, seen = page(src, params, name, trace, as_is=True)
            if seen["mnist_like"]:
                return run("views", as_mnist, x, params, seen, trace)
            cuts = run("crop", crop, x, params, seen, trace)
            return digit_steps(cuts[0], params, seen, trace)
    except DigitsError as e:
        raise named(e, name) from None


def preprocess(src: ImageInput, params: ReaderParams = PARAMS, name: str = "image") -> np.ndarray:
    """The (28, 28) uint8 image the model reads first of one digit (ink 255 on 0)."""
    return read_digit(src, params, name).images[0]


def ink_only(gray: np.ndarray, params: ReaderParams = PARAMS) -> np.ndarray:
    """polarity, background and lines on grey levels already decoded: the ink alone, bright on black."""
    x, seen = np.asarray(gray, np.float32), {}
    with one_blas_thread():
        for step, fn in PAGE_STEPS:
            x = run(step, fn, x, params, seen, None)
    return x


def read_marks(src: ImageInput, params: ReaderParams = PARAMS, name: str = "image",
               trace: Trace | None = None) -> list[Segment]:
    """Every digit of a number, left to right, through the same steps as one digit."""
    name = str(src) if isinstance(src, (str, Path)) else name
    try:
        with one_blas_thread():
            x, seen = page(src, params, name, trace)
            cuts = run("crop", lambda a, p, s: crop(a, p, s, number=True), x, params, seen, trace)
            return segments(cuts, params, seen, trace)
    except DigitsError as e:
        raise named(e, name) from None


def segments(cuts: list[Cut], params: ReaderParams, seen: dict, trace: Trace | None) -> list[Segment]:
    """strokes, fit and views for each cut of a number, with the other readings crop found for it (the group it
    was split from, the marks joined from it, its levelled views)."""
    wholes: dict[int, Segment] = {}
    joins = {}
    for first, stop, j in seen.get("_joins", ()):
        joins.setdefault(first, []).append((stop, Segment(j.box, digit_steps(j, params, seen, None),
                                                           levelled=levelled_views(j, params, seen))))
    out = []
    for i, c in enumerate(cuts):
        whole = None
        if c.whole is not None:
            if id(c.whole) not in wholes:
                wholes[id(c.whole)] = Segment(c.whole.box, digit_steps(c.whole, params, seen, None))
            whole = wholes[id(c.whole)]
        out.append(Segment(c.box, digit_steps(c, params, seen, trace, i), whole, tuple(joins.get(i, ())),
                           levelled_views(c, params, seen)))
    return out


def levelled_views(c: Cut, params: ReaderParams, seen: dict) -> Callable[[], Views] | None:
    """What makes the views of the cut levelled (crop.levelled) when called, where the crop allows it."""
    if c.stroke is None:
        return None

    def made() -> Views:
        return digit_steps(Cut(levelled(c.image, c.stroke, params.crop), c.box), params, seen, None)
    return made


def as_mnist(x: np.ndarray, params: ReaderParams, seen: dict) -> tuple[Views, dict]:
    """The views step for an image that already is an MNIST-style digit: read as it is, unless blank."""
    if x.max() < params.background.min_contrast:
        raise NoInk("no ink found (blank image)")
    return Views(x.astype(np.uint8)[None]), {"views": 1}
