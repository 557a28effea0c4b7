"""The paper under a fat marker's strokes: a page's lighting is taken out, not left as grey ink."""
from __future__ import annotations

import numpy as np

from conftest import holes

from digit_recognizer.inference.reader import PARAMS
from digit_recognizer.inference.reader.background import Coarse, background, coarse, paper
from digit_recognizer.inference.reader.ops import box_mean, opened as grey_opening
from digit_recognizer.inference.reader.surface import paper_surface

INK_LEVEL = PARAMS.ink.inside * 255
HOLE_PAPER = PARAMS.ink.seen * 255
P = PARAMS.background


def opened(x: np.ndarray, k: int) -> np.ndarray:
    """The background step's flat opening, k px wide."""
    return box_mean(grey_opening(x, (k, k)), k)

SIDE = 160  # px


def lit_page(ink_mask: np.ndarray, gradient: float = 50.0, vignette: float = 40.0) -> np.ndarray:
    """(SIDE, SIDE) ink bright: paper lit unevenly (a gradient across the page and a darker ring towards its
    corners, in grey levels), ink a fixed level above the darkest paper."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1) * 2 - 1
    paper = 30 + gradient * (xx + 1) / 2 + vignette * (xx ** 2 + yy ** 2) / 2
    rng = np.random.default_rng(0)
    return np.where(ink_mask, 220.0, paper) + rng.normal(0, 2, (SIDE, SIDE))


def blob(cy=0.5, cx=0.5, ry=0.3, rx=0.22) -> np.ndarray:
    """(SIDE, SIDE) bool: a fat marker's 0 with its loop filled, an ellipse filling much of the frame."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def test_a_fat_blob_on_an_unevenly_lit_page_leaves_no_grey_paper():
    ink = blob()
    x = lit_page(ink)
    assert Coarse.measure(x, P).stroke_opening(P) > SIDE // 4  # the fat strokes' opening: wider than the lighting's
    y, _ = background(x.astype(np.float32), PARAMS)
    paper = ~ink
    assert np.percentile(y[paper], 99) < 0.1 * 255  # the lighting is gone from the paper
    assert np.percentile(y[ink], 5) > INK_LEVEL  # and the ink is all there


def test_the_surface_follows_the_lighting_where_the_flat_opening_cannot():
    ink = blob()
    x = lit_page(ink)
    flat = opened(x, SIDE)  # an opening as wide as the image: the darkest paper everywhere
    surface = paper_surface(x.astype(np.float32), flat, P)
    truth = lit_page(np.zeros_like(ink))
    around = ~ink
    assert np.abs(surface - truth)[around].mean() < 4  # grey levels: within the noise of the page
    assert np.abs(flat - truth)[around].mean() > 15  # while the opening misses the lighting by far


def test_no_surface_is_fitted_where_the_strokes_fill_the_frame():
    x = lit_page(np.ones((SIDE, SIDE), bool) & ~blob(ry=0.02, rx=0.02))
    assert paper_surface(x, np.full_like(x, x.min()), P) is None


def test_a_grey_patch_in_a_thinned_blob_is_not_counted_as_holes_but_a_hole_is():
    rng = np.random.default_rng(1)
    digit = np.zeros((28, 28))
    digit[6:22, 8:20] = 255
    digit[10:18, 11:17] = INK_LEVEL + rng.normal(0, 6, (8, 6))  # a pinhole spread by thinning: mid-grey, noisy
    assert holes(np.clip(digit, 0, 255)) == 0
    digit[12:16, 13:15] = HOLE_PAPER / 2  # paper showing through
    assert holes(np.clip(digit, 0, 255)) == 1


def test_a_blurred_digit_keeps_the_opening_a_sharp_one_gets_the_surface():
    from scipy import ndimage

    ink = blob()
    for x, fitted in ((ndimage.gaussian_filter(lit_page(ink), 12), False), (lit_page(ink), True)):
        small = coarse(x, P)  # a tiny digit enlarged is all blur: no paper apart from it to fit a surface to
        c = Coarse.measure(small, P)
        flat = opened(small, max(small.shape))
        assert (not np.array_equal(paper(small, max(small.shape), P, c.sharpness, c.lighting), flat)) == fitted
