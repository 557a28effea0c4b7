"""Other hands from handwriting fonts: the bank, its splits, the drawn glyphs, and how training mixes them in."""
import numpy as np
import pytest
import torch

from digit_recognizer.constants import IMAGE_SIZE, NOT_DIGIT
from digit_recognizer.data.dataset import Split
from digit_recognizer.errors import DigitsError
from digit_recognizer.training import fonts, outliers
from digit_recognizer.training.exposure import widened
from digit_recognizer.training.glyphs import LETTERS
from digit_recognizer.training.outliers import outlier_bank
from digit_recognizer.training.recipes import RECIPES, make_config

# Debian packages these as fonts-*: they are kept for evaluation by others and must never be in the bank
DEBIAN_FAMILIES = {"comic-neue", "kristi", "dancing-script", "kaushan-script", "nanum-pen-script",
                   "nanum-brush-script", "klee-one", "lobster", "lobster-two", "leckerli-one", "cabin-sketch",
                   "cherry-bomb-one", "yusei-magic", "humor-sans"}


def test_the_bank_holds_every_family_once_in_one_split_and_none_from_debian():
    glyphs, names = fonts.bank()
    assert glyphs.shape == (len(names), 2, len(fonts.CHARACTERS), fonts.GLYPH_BOX, fonts.GLYPH_BOX)
    assert len(set(names)) == len(names) and not DEBIAN_FAMILIES & set(names)
    splits = {s: set(fonts.families(s).tolist()) for s in ("train", "val", "test")}
    assert sum(len(v) for v in splits.values()) == len(names)
    assert not (splits["train"] & splits["val"] or splits["train"] & splits["test"] or splits["val"] & splits["test"])
    assert min(len(v) for v in splits.values()) >= 5
    # one design counts as one family: all of Playwrite's school hands fall in the same split
    assert len({fonts.split_of(n) for n in names if n.startswith("playwrite-")}) == 1
    # every glyph has ink, and its taller side is GLYPH_HEIGHT
    ink = glyphs > 127
    assert ink.any(axis=(-1, -2)).all()
    rows, cols = ink.any(-1), ink.any(-2)
    assert (np.maximum(rows.sum(-1), cols.sum(-1)) >= fonts.GLYPH_HEIGHT - 3).all()


def test_font_digits_are_mnist_shaped_labelled_and_from_their_split_only(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = fonts.font_digits(200, rng)
    assert x.shape == (200, IMAGE_SIZE, IMAGE_SIZE) and x.dtype == np.uint8 and y.dtype == np.int64
    assert set(y.tolist()) == set(range(10))
    assert (x.reshape(200, -1).max(1) > 200).all()
    # placed as MNIST's digits were: the centre of mass at the centre
    w = x.astype(np.float64)
    grid = np.arange(IMAGE_SIZE)
    cy, cx = (w.sum(2) @ grid) / w.sum((1, 2)), (w.sum(1) @ grid) / w.sum((1, 2))
    assert np.abs(cy - 13.5).max() < 2 and np.abs(cx - 13.5).max() < 2
    used = []
    real = fonts.bank()[0]
    monkeypatch.setattr(fonts, "written", lambda g, rng: used.append(g) or np.zeros((28, 28), np.uint8))
    fonts.font_digits(300, np.random.default_rng(1), "val")
    val = real[fonts.families("val")]
    assert all(any((g == v).all() for v in val.reshape(-1, *g.shape)) for g in used[:20])


def test_font_letters_are_letters_not_digits(monkeypatch):
    chars = []
    real = fonts.drawn
    monkeypatch.setattr(fonts, "drawn", lambda c, rng, split: chars.extend(c.tolist()) or real(c, rng, split))
    out = fonts.font_letters(50, np.random.default_rng(2))
    assert out.shape == (50, IMAGE_SIZE, IMAGE_SIZE)
    assert min(chars) >= 10 and max(chars) < len(fonts.CHARACTERS)


def test_a_written_glyph_takes_the_pen_it_was_given():
    glyph = np.zeros((fonts.GLYPH_BOX, fonts.GLYPH_BOX), np.uint8)
    glyph[4:44, 22:26] = 255  # a 4-px stroke
    assert fonts.stroke_width(glyph.astype(np.float32)) == pytest.approx(4, abs=0.5)
    widths = []
    for seed in range(40):
        out = fonts.written(glyph, np.random.default_rng(seed))
        widths.append((out > 127).sum(1).max())
    assert max(widths) - min(widths) >= 2  # thin and thick pens both drawn


def test_the_best_recipe_mixes_fonts_into_digits_and_outliers_and_others_stay_as_they_were():
    assert RECIPES["best"].fonts > 0 and RECIPES["marker"].fonts == 0.0
    digits = torch.from_numpy(np.zeros((100, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
    digits[:, 6:22, 12:16] = 255
    tr = Split(digits, torch.arange(100) % 10)
    plain = make_config("fast", other_hands=0.2, outliers=0.3)
    typed = make_config("fast", other_hands=0.2, outliers=0.3, fonts=0.5)
    a, b = widened(plain, tr), widened(typed, tr)
    assert len(a) == len(b) == 150 and (b.labels[-30:] == NOT_DIGIT).all()
    assert not torch.equal(a.images[100:], b.images[100:])
    rng = np.random.default_rng(3)
    bank = outlier_bank(20, rng, digits.numpy(), tr.labels.numpy())
    again = outlier_bank(20, np.random.default_rng(3), digits.numpy(), tr.labels.numpy(), fonts=0.0)
    assert np.array_equal(bank, again)  # no fonts asked: the bank drawn as it always was


def test_fonts_is_a_share():
    with pytest.raises(DigitsError, match="fonts"):
        make_config("fast", fonts=1.5)
    with pytest.raises(DigitsError, match="fonts_replace 'symbols'"):
        make_config("fast", fonts=0.5, fonts_replace="symbols")


@pytest.mark.parametrize("replace", ["glyphs", "letters"])
def test_fonts_replace_only_the_glyphs_it_names(monkeypatch, replace):
    drawn, typed = [], []
    real_glyph, real_letters = outliers.glyph, outliers.font_letters
    monkeypatch.setattr(outliers, "glyph", lambda rng, name=None: drawn.append(name) or real_glyph(rng, name))
    monkeypatch.setattr(outliers, "font_letters", lambda n, rng: typed.append(n) or real_letters(n, rng))
    digits = np.zeros((10, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    digits[:, 6:22, 12:16] = 255
    bank = outlier_bank(300, np.random.default_rng(5), digits, np.arange(10), fonts=1.0, replace=replace)
    assert bank.shape == (300, IMAGE_SIZE, IMAGE_SIZE) and typed[0] > 60  # 0.57 of 300 are glyphs, 32 of 60 letters
    if replace == "glyphs":
        assert drawn == []  # every glyph written in a font
    else:  # every letter in a font; the symbols and shapes still drawn, in their share of the glyphs
        assert drawn and not set(drawn) & set(LETTERS)
        assert 0.3 < len(drawn) / (len(drawn) + typed[0]) < 0.6  # 28 of NOT_DIGITS' 60 are not letters


def test_a_damaged_bank_is_one_clear_error(monkeypatch, tmp_path):
    bad = tmp_path / "font_glyphs.npz"
    bad.write_bytes(b"not an npz")

    class Files:
        def joinpath(self, name):
            return bad

    monkeypatch.setattr(fonts.resources, "files", lambda pkg: Files())
    fonts.bank.cache_clear()
    try:
        with pytest.raises(DigitsError, match="font glyph bank .* rebuild it"):
            fonts.bank()
    finally:
        fonts.bank.cache_clear()
