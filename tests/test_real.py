"""Real-looking images: segmentation of whole numbers, refusal of non-digits, evaluation on a user's folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import read_right, run_digits
from digit_recognizer.errors import NoInk, NotADigit
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.inference.reader import preprocess, read_marks as segment
from digit_recognizer.testing.synth import compose, not_a_digit


@pytest.fixture(scope="module")
def rec():
    return Recognizer.load()


def page_with(digits: list[np.ndarray], heights: list[int], gaps: list[int], specks: int = 0) -> np.ndarray:
    """Dark digits on a white page at the given heights (px) and horizontal gaps (px, negative = touching)."""
    parts = [np.asarray(Image.fromarray(d).resize((h, h), Image.Resampling.BICUBIC), np.float32)
             for d, h in zip(digits, heights)]
    w = sum(p.shape[1] for p in parts) + sum(gaps) + 80
    page = np.zeros((max(heights) + 80, w), np.float32)
    x = 40
    for p, gap in zip(parts, [0] + gaps):
        x += gap
        region = page[40:40 + p.shape[0], x:x + p.shape[1]]
        page[40:40 + p.shape[0], x:x + p.shape[1]] = np.maximum(region, p)
        x += p.shape[1]
    rng = np.random.default_rng(0)
    for _ in range(specks):
        y, x = rng.integers(5, page.shape[0] - 5), rng.integers(5, page.shape[1] - 5)
        page[y:y + 2, x:x + 2] = 255
    return (245 - page * 0.9).astype(np.uint8)


def test_reads_a_number_with_different_heights_and_specks(mnist, rec):
    idx = [1, 2, 3, 4]  # 2 1 0 4
    img = page_with([mnist.test.images[i].numpy() for i in idx], [90, 60, 120, 80], [10, 25, 5], specks=12)
    r = rec.read(img)
    assert r.number == "".join(str(int(mnist.test.labels[i])) for i in idx)
    xs = [b[0] for b in r.boxes]
    assert xs == sorted(xs) and all(b[2] > 0 and b[3] > 0 for b in r.boxes)


def test_touching_digits_are_split(mnist, rec):
    digits = [mnist.test.images[i].numpy() for i in (0, 3)]  # 7, 0
    img = page_with(digits, [100, 100], [-22])  # the 28x28 frames overlap so the strokes touch
    assert len(segment(img)) == 2
    assert rec.read(img).number == "70"


def test_a_wide_digit_is_not_split(rec):
    """A flat 0 is wider than a digit's usual aspect allows: geometry splits it, the model reads it whole."""
    zero = Image.new("L", (300, 150), 255)
    ImageDraw.Draw(zero).ellipse([(20, 20), (280, 130)], outline=0, width=16)
    segs = segment(np.asarray(zero))
    assert len(segs) >= 2 and all(s.whole is segs[0].whole for s in segs)  # split, with the whole kept
    r = rec.read(np.asarray(zero))
    assert r.number == "0" and r.boxes[0][2] > 250


def test_broken_strokes_are_one_digit(rec):
    """A 4 drawn in two strokes that do not touch, and a 5 whose top bar is detached."""
    four = Image.new("L", (200, 240), 255)
    d = ImageDraw.Draw(four)
    d.line([(120, 20), (30, 150), (170, 150)], fill=0, width=14)
    d.line([(130, 95), (130, 225)], fill=0, width=14)  # starts below the first stroke's corner: a gap
    five = Image.new("L", (200, 240), 255)
    d = ImageDraw.Draw(five)
    d.line([(70, 25), (165, 25)], fill=0, width=14)  # the bar, detached
    d.line([(60, 45), (55, 110)], fill=0, width=14)
    d.arc([(45, 90), (165, 215)], start=-150, end=140, fill=0, width=14)
    for img in (four, five):
        assert len(segment(np.asarray(img))) == 1
    assert rec.read(np.asarray(four)).number == "4"
    assert rec.read(np.asarray(five)).number == "5"


def test_a_bar_written_apart_joins_its_digit(rec):
    """A 5 whose bar sits up and to the right of its body (little column overlap), after a 1: two digits."""
    img = Image.new("L", (420, 260), 255)
    d = ImageDraw.Draw(img)
    d.line([(60, 40), (60, 215)], fill=0, width=14)  # the 1
    d.line([(230, 60), (225, 120)], fill=0, width=14)  # the 5's stem and bowl
    d.arc([(210, 95), (320, 215)], start=-150, end=140, fill=0, width=14)
    d.line([(290, 30), (380, 22)], fill=0, width=14)  # its bar
    assert len(segment(np.asarray(img))) == 2
    assert rec.read(np.asarray(img)).number == "15"


def test_a_digit_whose_ink_faded_between_its_strokes_is_read_joined(rec):
    """A 0 whose top and bottom faded almost away falls apart into "(" and ")": the reader also cuts the two
    out joined, and the model, surer of the joined 0 than of either half, reads "104". Without the joined cut the
    halves are read as two digits; two 1s side by side stay two."""
    from dataclasses import replace

    from digit_recognizer.inference.reader import PARAMS

    img = Image.new("L", (560, 260), 255)
    d = ImageDraw.Draw(img)
    d.line([(80, 40), (80, 215)], fill=25, width=14)  # the 1
    d.ellipse([(190, 40), (310, 215)], outline=230, width=14)  # the 0, faded almost away ...
    d.arc([(190, 40), (310, 215)], start=100, end=260, fill=25, width=14)  # ... but on its left
    d.arc([(190, 40), (310, 215)], start=290, end=70, fill=25, width=14)  # ... and right
    d.line([(450, 40), (380, 150), (490, 150)], fill=25, width=14)  # the 4
    d.line([(460, 95), (460, 220)], fill=25, width=14)
    faded = np.asarray(img)
    cuts = segment(faded)
    assert len(cuts) == 4 and [stop for stop, _ in cuts[1].joins] == [3]  # "(" and ")" also cut out joined
    r = rec.read(faded)
    assert r.number == "104" and r.boxes[1][2] > 100  # the 0's box spans both halves
    apart = Recognizer(rec.loaded, params=replace(PARAMS, crop=replace(PARAMS.crop, join_marks=1)))
    assert len(apart.read(faded).digits) == 4

    ones = Image.new("L", (400, 260), 255)
    d = ImageDraw.Draw(ones)
    for x in (150, 200):
        d.line([(x, 40), (x, 215)], fill=25, width=14)
    assert rec.read(np.asarray(ones)).number == "11"


def test_a_number_written_with_a_pen_running_dry(mnist, rec, monkeypatch):
    """Strokes that fade to a fifth of the ink in places stay whole: faint stretches join the strokes they run
    on from instead of breaking them into specks (a digit dropped) or pieces (one digit read as two)."""
    from digit_recognizer.inference.reader import marks
    from digit_recognizer.inference.reader.masks import components

    rng = np.random.default_rng(0)
    numbers = []
    for _ in range(20):
        idx = rng.integers(len(mnist.test.images), size=4)
        label = "".join(str(int(mnist.test.labels[i])) for i in idx)
        numbers.append((compose([mnist.test.images[i].numpy() for i in idx], rng, single=False, dry=True), label))

    def right() -> int:
        return sum(rec.read(image).number == label for image, label in numbers)

    assert right() >= 13  # 15 of 20
    def one(ink, params):  # one threshold
        labels, stats = components(ink > params.ink.strong * 255, 8)
        return labels, stats, np.arange(1, len(stats))

    monkeypatch.setattr(marks, "stroke_components", one)
    assert right() <= 6  # 2 of 20


def test_a_digit_whose_ink_faded_along_its_strokes_is_read_levelled(mnist, rec):
    """A pen running dry leaves a stroke dark where it starts and faint where it ends; the model refuses many
    such digits as cut. Read levelled where it refuses them, no number read right as cut is lost (only refused
    digits change) and none fewer are read right: 36 -> 41 of 60 with the three wide nets it was written for,
    44 -> 46 with the shipped two deep nets, which refuse fewer of them as cut (switched off, a dry pen's
    validation numbers lose 4 points: docs/experiments.md § The two reader rules)."""
    from dataclasses import replace

    from digit_recognizer.inference.reader import PARAMS

    unlevelled = Recognizer(rec.loaded, params=replace(PARAMS, crop=replace(PARAMS.crop, level_floor=1.0)))
    rng = np.random.default_rng(0)
    right = {"levelled": 0, "as cut": 0}
    for _ in range(60):
        idx = rng.integers(len(mnist.test.images), size=4)
        label = "".join(str(int(mnist.test.labels[i])) for i in idx)
        image = compose([mnist.test.images[i].numpy() for i in idx], rng, single=False, dry=True)
        levelled, as_cut = rec.read(image).number, unlevelled.read(image).number
        assert levelled == as_cut or "?" in as_cut, (label, as_cut, levelled)
        right["levelled"] += levelled == label
        right["as cut"] += as_cut == label
    assert right["levelled"] >= right["as cut"] and right["as cut"] >= 40, right


def test_a_light_pencil_photographed_on_a_page(mnist, rec, monkeypatch):
    """Ink a third to half as dark as a pen's on a photographed page: stretched to full, the page's grain passes
    the crop's threshold in single pixels all over it. The crop keeps to the strokes; with the threshold alone
    (and no dust left out) it took in the page, and the grains passed for hairlines thickened into a blob."""
    from digit_recognizer.inference.reader import crop
    from digit_recognizer.inference.reader.masks import bounds

    rng = np.random.default_rng(0)
    items = []
    for _ in range(40):
        i = int(rng.integers(len(mnist.test.images)))
        strength = rng.uniform(0.3, 0.5)
        items.append((compose([mnist.test.images[i].numpy()], rng, single=True, strength=strength),
                      int(mnist.test.labels[i])))

    def right() -> int:
        return read_right(rec.predict_many([image for image, _ in items]), [label for _, label in items])

    assert right() >= 36  # 39 of 40 (the threshold alone, dust left out: 39)
    monkeypatch.setattr(crop, "ink_mask", lambda x, params: x > params.ink.seen * 255)  # the threshold alone
    monkeypatch.setattr(crop, "dust_free_box", lambda mask, p: bounds(mask))
    assert right() <= 34  # 33 of 40


def test_blank_and_noise_are_refused():
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(60):
        try:
            preprocess(not_a_digit(rng))
        except (NoInk, NotADigit):  # inside preprocessing they are raised; the Recognizer answers them refused
            refused += 1
    assert refused == 60


def test_mnist_is_rarely_refused(mnist, rec):
    preds = rec.predict_arrays(mnist.test.images)
    assert sum(p.refused for p in preds) / len(preds) <= 0.01
    assert all(p.reason for p in preds if p.refused)


def test_min_confidence_and_read_cli(mnist, tmp_path):
    rng = np.random.default_rng(3)
    img = compose([mnist.test.images[i].numpy() for i in (1, 2, 3)], rng, single=False)
    (tmp_path / "n.jpg").write_bytes(img)
    res = run_digits("read", str(tmp_path / "n.jpg"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["number"] == "210" and len(out["digits"]) == 3
    assert set(out["digits"][0]) == {"digit", "confidence", "box", "refused"}
    strict = json.loads(run_digits("read", str(tmp_path / "n.jpg"), "--json", "--min-confidence", "1").stdout)
    assert [d["refused"] for d in strict["digits"]] == [d["confidence"] < 1 for d in strict["digits"]]
    assert strict["number"] == "".join("?" if d["refused"] else str(d["digit"]) for d in strict["digits"])
    assert all("low confidence" in d["reason"] for d in strict["digits"] if d["refused"])
    shown = run_digits("read", str(tmp_path / "n.jpg"), "--min-confidence", "1").stdout  # and on the terminal
    assert all(f"? {k}: " in shown for k, d in enumerate(strict["digits"], 1) if d["refused"])
    number = run_digits("predict", str(tmp_path / "n.jpg"), "--json")  # a number is not one digit: refused
    answer = json.loads(number.stdout)
    assert number.returncode == 0 and answer["refused"] and "read it as a number" in answer["reason"]
    (tmp_path / "d.jpg").write_bytes(compose([mnist.test.images[1].numpy()], rng, single=True))
    single = json.loads(run_digits("predict", str(tmp_path / "d.jpg"), "--json", "--min-confidence", "1").stdout)
    assert single["refused"] is (single["confidence"] < 1)
    assert not single["refused"] or "low confidence" in single["reason"]
    too_strict = run_digits("predict", str(tmp_path / "d.jpg"), "--min-confidence", "1.01")
    assert too_strict.returncode == 2 and "--min-confidence" in too_strict.stderr


def test_evaluate_images_folder(mnist, tmp_path, rec):
    rng = np.random.default_rng(4)
    rows = ["file,label"]
    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes(compose([mnist.test.images[i].numpy()], rng, single=True))
        rows.append(f"{i}.jpg,{int(mnist.test.labels[i])}")
    (tmp_path / "blank.png").write_bytes(not_a_digit(np.random.default_rng(0)))
    rows.append("blank.png,")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    res = run_digits("evaluate", "--images", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["mode"] == "digits" and out["n"] == 7 and out["accuracy"] >= 6 / 7
    (tmp_path / "labels.csv").write_text("name,digit\n")
    bad = run_digits("evaluate", "--images", str(tmp_path))
    assert bad.returncode == 1 and "header" in bad.stderr


def test_the_shipped_model_reads_other_hands_and_refuses_letters(mnist, rec):
    """Drawn with a seed training never used: letters by random hands, MNIST's test 1s with a flag and 7s with
    a bar (measured: 96.3% refused, 98.7% and 98.7% read)."""
    from digit_recognizer.training.glyphs import LETTERS, NOT_DIGITS
    from digit_recognizer.training.hands import crossed_seven, flagged_one
    from digit_recognizer.training.strokes import Hand, draw

    rng = np.random.default_rng(11)
    images, labels = mnist.test.images.numpy(), mnist.test.labels.numpy()
    letters = np.stack([draw(NOT_DIGITS[LETTERS[rng.integers(len(LETTERS))]], Hand.random(rng), rng)
                        for _ in range(300)])
    assert np.mean([p.refused for p in rec.predict_arrays(letters)]) >= 0.9
    for digit, edit in ((1, flagged_one), (7, crossed_seven)):
        edited = np.stack([edit(d, rng) for d in images[labels == digit][:300]])
        assert np.mean([p.digit == digit and not p.refused for p in rec.predict_arrays(edited)]) >= 0.95
