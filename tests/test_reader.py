"""The reader's evidence: every presentation scored against a recorded baseline, and a fingerprint of its output.

    pytest -m reader                               # the tier: about 100 validation digits per set, with floors
    pytest -m reader --update-reader-baseline      # record the scores after a change meant to move them

The tier's sets are made from the validation split's digits with their own seed, so that the values in
ReaderParams can be checked against them (docs/experiments.md says where each was chosen). A set's floor is its
baseline less FLOOR_POINTS. The fingerprint (fast tier) puts fixed drawings through the reader and the fitting:
an output that changes fails it until params.STEPS_REVISION (or FIT_REVISION) is bumped and it is re-recorded, so
that the version model files record changes with what the reader does.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digit_recognizer.inference.reader import PARAMS, fit_and_centre, preprocess
from digit_recognizer.inference.reader.params import FIT_REVISION, STEPS_REVISION

BASELINE = Path(__file__).with_name("reader_baseline.json")
FINGERPRINT = Path(__file__).with_name("reader_fingerprint.npz")
PER_SET, PER_NUMBER_SET = 100, 50
SEED = 11  # neither benchmarks/paper_sets.py's validation seed (1) nor its test seed (2)
FLOOR_POINTS = 1.0
NUMBER_SETS = ("numbers", "numbers-comb")
MEAN_LEVELS = 1.0  # grey levels: a fingerprint image may differ this much on average (another CPU's rounding)


def tier_sets(images: np.ndarray, labels: np.ndarray) -> dict[str, list[tuple[bytes, str]]]:
    """Every presentation of testing.presentations, digits on paper, numbers (also in a form's comb), a light
    pencil on a photographed page, and blank pages and noise to refuse: (file bytes, label) each."""
    import zlib

    from digit_recognizer.testing.presentations import PRESENTATIONS, in_comb, make
    from digit_recognizer.testing.synth import compose, not_a_digit

    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng([SEED, zlib.crc32(name.encode())])

    def singles(r: np.random.Generator, strength: float | tuple = 1.0) -> list:
        picks = r.integers(len(images), size=PER_SET)
        return [(compose([images[i]], r, single=True, strength=strength if isinstance(strength, float)
                         else r.uniform(*strength)), str(labels[i])) for i in picks]

    def numbers(r: np.random.Generator, draw) -> list:
        out = []
        for _ in range(PER_NUMBER_SET):
            idx = r.integers(len(images), size=int(r.integers(3, 7)))
            out.append((draw([images[i] for i in idx], r), "".join(str(labels[i]) for i in idx)))
        return out

    def presented(name: str) -> list:
        r = rng(name)
        return [(make(name, images[i], r), str(labels[i])) for i in r.integers(len(images), size=PER_SET)]

    sets = {name: presented(name) for name in PRESENTATIONS}
    sets["singles"] = singles(rng("singles"))
    sets["pencil-photo"] = singles(rng("pencil-photo"), (0.3, 0.5))
    sets["numbers"] = numbers(rng("numbers"), lambda ds, r: compose(ds, r, single=False))
    sets["numbers-comb"] = numbers(rng("numbers-comb"), in_comb)
    r = rng("refuse")
    sets["refuse"] = [(not_a_digit(r), "") for _ in range(PER_SET)]
    return sets


def score(recognizer, name: str, items: list[tuple[bytes, str]]) -> float:
    """% read exactly (not refused); for `refuse`, % refused."""
    if name in NUMBER_SETS:
        right = sum(not (r := recognizer.read(data)).refused and r.number == label for data, label in items)
    else:
        preds = recognizer.predict_many([data for data, _ in items])
        if name == "refuse":
            right = sum(p.refused for p in preds)
        else:
            right = sum(not p.refused and str(p.digit) == label for p, (_, label) in zip(preds, items))
    return round(100.0 * right / len(items), 2)


@pytest.mark.reader
def test_every_presentation_reads_as_well_as_its_baseline(mnist, request):
    from digit_recognizer import Recognizer
    from digit_recognizer.data import train_val_split

    val = train_val_split(mnist.train, 0.1, 0)[1]
    sets = tier_sets(val.images.numpy(), val.labels.numpy())
    recognizer = Recognizer.load(precision="fp32")  # the same answers on every CPU
    scores = {name: score(recognizer, name, items) for name, items in sets.items()}
    if request.config.getoption("--update-reader-baseline"):
        from digit_recognizer.data.formats import atomic_write_bytes

        record = {"per_set": PER_SET, "per_number_set": PER_NUMBER_SET, "seed": SEED, "scores": scores}
        atomic_write_bytes(BASELINE, (json.dumps(record, indent=1) + "\n").encode())
    baseline = json.loads(BASELINE.read_text())["scores"]
    rows = [(name, scores[name], baseline.get(name)) for name in sets]
    from conftest import READER_TABLE

    request.config.stash[READER_TABLE] = rows
    low = [f"{name} {got:.1f}% (baseline {base:.1f}%)" for name, got, base in rows
           if base is None or got < base - FLOOR_POINTS]
    assert not low, "below the floor: " + "; ".join(low)


def drawings() -> list[bytes]:
    """Fixed images (no randomness but a seeded page grain) that go through every step: digits drawn on
    textured paper, light on dark, coloured, on squared paper, in a form's box, with a fat marker and a fine pen,
    small, and blocky."""
    rng = np.random.default_rng(0)
    out = []

    def page(w: int, h: int, paper=(235, 232, 225)) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        grain = np.clip(np.array(paper, np.float32) + rng.normal(0, 4, (h, w, 1)), 0, 255).astype(np.uint8)
        img = Image.fromarray(grain, "RGB")
        return img, ImageDraw.Draw(img)

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    for width, ink in ((9, (20, 20, 30)), (3, (25, 35, 110)), (30, (10, 10, 10))):  # pen, fine pen, marker
        img, d = page(220, 260)
        d.ellipse([60, 50, 160, 210], outline=ink, width=width)  # a 0
        out.append(png(img))
    img, d = page(200, 240)
    d.line([(60, 60), (150, 60), (90, 200)], fill=(30, 30, 30), width=10)  # a 7
    out.append(png(Image.fromarray(255 - np.asarray(img))))  # light on dark
    img, d = page(200, 240, paper=(250, 200, 210))
    d.line([(100, 40), (100, 200)], fill=(40, 140, 60), width=12)  # a green 1 on pink paper
    out.append(png(img))
    img, d = page(200, 240)
    for at in range(5, 240, 20):
        d.line([(0, at), (199, at)], fill=(150, 185, 230), width=1)
        d.line([(at, 0), (at, 239)], fill=(150, 185, 230), width=1)
    d.arc([50, 40, 150, 130], 180, 0, fill=(20, 20, 25), width=8)  # a 2 on squared paper
    d.line([(150, 85), (50, 200), (160, 200)], fill=(20, 20, 25), width=8)
    out.append(png(img))
    img, d = page(180, 220)
    d.rectangle([0, 0, 179, 219], outline=(30, 30, 40), width=3)  # a 4 in a form's box
    d.line([(110, 30), (40, 140), (150, 140)], fill=(20, 20, 30), width=9)
    d.line([(110, 30), (110, 190)], fill=(20, 20, 30), width=9)
    out.append(png(img))
    img, d = page(24, 30)  # a small 1
    d.line([(12, 5), (12, 25)], fill=(20, 20, 20), width=2)
    out.append(png(img))
    small = Image.new("L", (9, 9), 255)
    ImageDraw.Draw(small).ellipse([1, 0, 7, 8], outline=0, width=2)
    out.append(png(small.resize((90, 90), Image.Resampling.NEAREST)))  # blocky
    return out


def crops() -> list[np.ndarray]:
    """Fixed crops of ink (ink bright) for the fitting: a pen's, a marker's and a hairline's, narrow and flat."""
    out = []
    for size, width in (((120, 90), 10), ((120, 90), 34), ((120, 90), 2), ((160, 40), 8), ((60, 200), 8)):
        img = Image.new("L", size[::-1], 0)
        ImageDraw.Draw(img).ellipse([2, 2, size[1] - 3, size[0] - 3], outline=255, width=width)
        out.append(np.asarray(img, np.float32))
    return out


def test_the_reader_gives_what_its_revision_recorded(request):
    """Changing what the reader gives the model must change its version: bump STEPS_REVISION (or FIT_REVISION
    for the strokes and fit steps) and re-record with --update-reader-baseline."""
    views = np.stack([preprocess(d, PARAMS) for d in drawings()])  # (N, 28, 28)
    fitted = np.stack([fit_and_centre(c, PARAMS) for c in crops()])  # (M, 28, 28)
    if request.config.getoption("--update-reader-baseline"):
        buf = io.BytesIO()
        np.savez_compressed(buf, views=views, fitted=fitted, steps_revision=STEPS_REVISION,
                            fit_revision=FIT_REVISION)
        FINGERPRINT.write_bytes(buf.getvalue())
    with np.load(FINGERPRINT, allow_pickle=False) as f:
        recorded = {k: f[k] for k in f.files}
    for what, got, revision, name in ((views, recorded["views"], recorded["steps_revision"], "STEPS_REVISION"),
                                      (fitted, recorded["fitted"], recorded["fit_revision"], "FIT_REVISION")):
        current = STEPS_REVISION if name == "STEPS_REVISION" else FIT_REVISION
        assert int(revision) == current, f"{name} is {current}: re-record with --update-reader-baseline"
        diff = np.abs(what.astype(np.float32) - got.astype(np.float32)).mean(axis=(1, 2))
        assert (diff <= MEAN_LEVELS).all(), f"the reader's output changed ({diff.round(1)}): bump {name}"


def test_predict_and_read_run_the_same_steps_once_each_in_order():
    from digit_recognizer import Recognizer
    from digit_recognizer.inference.reader import STEPS

    import time

    recognizer = Recognizer.load()
    for image in drawings()[:3]:
        start = time.perf_counter()
        one, prediction = recognizer.trace(image)
        took_ms = (time.perf_counter() - start) * 1000
        number, reading = recognizer.trace(image, number=True)
        assert one.steps == number.steps == list(STEPS)
        assert all(s.ms >= 0 for s in one.stages) and 0 < sum(s.ms for s in one.stages) <= took_ms  # each timed
        assert not prediction.refused and reading.number == str(prediction.digit)
        # The same page at every step up to the crop: one path, not two that look alike. (The crop of a
        # number's digit keeps its own ink only, where one digit's crop keeps all that is not dust.)
        for a, b in zip(one.stages[:4], number.stages[:4]):
            np.testing.assert_array_equal(a.output, b.output)
            assert a.facts == b.facts
