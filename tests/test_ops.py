"""The reader's shortcuts give exactly what the library calls they stand in for."""
from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.inference.reader.background import neighbour_differences
from digit_recognizer.inference.reader.masks import components
from digit_recognizer.inference.reader.stats import (DIRECT, SAMPLE, correlation, median, order_stats, percentile,
                                                      percentiles, sample)


def test_percentile_is_numpys_to_the_last_bit():
    rng = np.random.default_rng(0)
    for trial in range(2000):
        values = (rng.random(int(rng.integers(1, 3000))) * rng.choice([1, 255, 1e4])).astype(
            (np.float32, np.float64)[trial % 2])
        if trial % 3 == 0:
            values = np.round(values)  # ties
        q = float(rng.choice([1, 10, 50, 90, 99, rng.uniform(0, 100)]))
        assert percentile(values, q) == float(np.percentile(values, q))
        assert median(values) == float(np.median(values))
        qs = (q, float(rng.uniform(0, 100)), 100 - q)  # several from one partition
        assert percentiles(values, qs) == tuple(float(np.percentile(values, x)) for x in qs)


def test_order_statistics_of_large_arrays_are_a_partitions():
    """Bracketed selection gives np.partition's values for any ranks, sizes, ties and orders, the rare missed
    bracket included (tiny brackets are forced for some trials)."""
    import digit_recognizer.inference.reader.stats as stats

    rng = np.random.default_rng(4)
    for trial in range(600):
        n = int(rng.integers(DIRECT + 1, 40_000))
        v = rng.standard_normal(n).astype((np.float32, np.float64)[trial % 2]) * rng.choice([1, 255])
        if trial % 3 == 0:
            v = np.round(v / 8)  # heavy ties
        if trial % 5 == 0:
            v = np.sort(v)  # an ordered array: the pilots must still be spread over it
        if trial % 7 == 0:
            v[rng.random(n) < 0.6] = 0  # most of it one value (a clipped image)
        ks = set(int(k) for k in rng.integers(0, n, int(rng.integers(1, 5))))
        ks = sorted(ks | ({0, n - 1} if trial % 11 == 0 else set()))  # now and then the extremes
        ks = ks + [min(ks[0] + 1, n - 1)]  # neighbours, as a percentile's two
        with pytest.MonkeyPatch.context() as m:
            if trial % 4 == 0:
                m.setattr(stats, "BRACKET", 0.01)  # brackets that often miss: the whole array is partitioned
            got = order_stats(v, ks)
        part = np.partition(v, ks)
        assert all(got[k] == part[k] for k in ks)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (60, 90), (300, 400), (1, 3 * SAMPLE), (3 * SAMPLE, 1)])
def test_neighbour_differences_sampled_in_place_are_those_of_the_whole_image(shape):
    y = np.random.default_rng(1).random(shape).astype(np.float32)
    whole = np.concatenate([np.diff(y, axis=0).ravel(), np.diff(y, axis=1).ravel()])
    np.testing.assert_array_equal(neighbour_differences(y), sample(whole))


def test_correlation_is_numpys():
    rng = np.random.default_rng(2)
    a = rng.random(500)
    b = a + rng.random(500)
    assert correlation(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert np.isnan(correlation(np.ones(5), b[:5]))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_components_are_opencvs_default_labelling(connectivity):
    import cv2

    rng = np.random.default_rng(3)
    for _ in range(50):
        mask = rng.random(tuple(rng.integers(1, 120, 2))) > rng.uniform(0.3, 0.99)
        if not mask.any():
            continue
        labels, stats = components(mask, connectivity)
        _, want, want_stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=connectivity)
        np.testing.assert_array_equal(labels, want)
        np.testing.assert_array_equal(stats[1:], want_stats[1:])


def test_the_paper_surfaces_sums_are_the_design_matrixs():
    from digit_recognizer.inference.reader.surface import TERMS, moments, powers, surface

    rng = np.random.default_rng(3)
    for h, w in [(3, 3), (17, 40), (120, 90)]:
        keep = rng.random((h, w)) < 0.6
        values = rng.random((h, w)) * 255
        x, y = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
        design = np.stack([x ** a * y ** b for a, b in TERMS], -1)[keep]  # (n, 6): a row per kept pixel
        m4, m2 = moments(keep.astype(np.float64), powers(w), powers(h), 4), moments(keep * values, powers(w),
                                                                                   powers(h), 2)
        normal = np.array([[m4[bi + bj, ai + aj] for aj, bj in TERMS] for ai, bi in TERMS])
        np.testing.assert_allclose(normal, design.T @ design, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose([m2[b, a] for a, b in TERMS], design.T @ values[keep], rtol=1e-10)
        coef = rng.normal(size=6)
        np.testing.assert_allclose(surface(coef, powers(w), powers(h)),
                                   np.stack([x ** a * y ** b for a, b in TERMS], -1) @ coef, atol=1e-12)
        for v in (values.ravel(), values.ravel()[1:]):  # odd and even counts
            assert median(v) == float(np.median(v))



@pytest.mark.parametrize("beyond", ["edge", "constant"])
def test_stroke_widths_measured_in_the_marks_box_are_the_whole_images(beyond):
    """typical_width over the marks' box (and a ring of paper) against the distances over the whole image, the
    frame padded as `beyond` says. To float32 rounding: OpenCV's precise distances can differ in the last bit
    with the buffer's alignment."""
    import cv2

    from digit_recognizer.inference.reader.masks import typical_width

    rng = np.random.default_rng(6)
    for trial in range(300):
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        mask = np.zeros((h, w), bool)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))  # a patch of ink, often cut by the frame
        y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
        mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < rng.uniform(0.3, 1.0)
        if not mask.any():
            continue
        padded = np.pad(mask, 1, mode=beyond).astype(np.uint8)
        whole = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]  # the whole image's
        assert typical_width(mask, beyond) == pytest.approx(2.0 * float(np.percentile(whole[mask], 90)), rel=1e-6)


def test_a_gradient_at_some_pixels_is_numpys_there():
    """background.gradient_at: NumPy's gradient magnitude, to the last bit, at the chosen pixels (one-sided
    differences on the border included)."""
    from digit_recognizer.inference.reader.background import gradient_at

    rng = np.random.default_rng(6)
    for trial in range(500):
        h, w = rng.integers(2, 40, 2)
        d = (rng.random((h, w)) * rng.choice([1.0, 255.0])).astype(np.float32)
        at = rng.random((h, w)) < 0.3
        got = gradient_at(d, *np.nonzero(at))
        assert got.dtype == np.float32 and np.array_equal(got, np.hypot(*np.gradient(d))[at]), (h, w)


def test_the_wide_blur_is_opencvs_gaussian_with_the_edge_repeated():
    """ops.wide_blur (two matrix products) against OpenCV's own Gaussian filter of the same width, the border
    repeated: the same image to float32 rounding, for sigmas up to twice the image's side."""
    from digit_recognizer.inference.reader.ops import gaussian, wide_blur

    rng = np.random.default_rng(7)
    for trial in range(200):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        x = (rng.random((h, w)) * 255).astype(np.float32)
        sigma = float(rng.uniform(0.5, 2.0 * max(h, w)))
        np.testing.assert_allclose(wide_blur(x, sigma), gaussian(x, sigma, "nearest"), atol=2e-3, rtol=0)


def test_rows_said_to_hold_no_run_hold_none():
    """lines.may_run, the shortcut past longest_runs: never no where a run brighter than the level is found
    (runs read on past the row's ends mirrored, levels rounded), and no for some images."""
    from digit_recognizer.inference.reader.lines import may_run
    from digit_recognizer.inference.reader.ops import longest_runs

    rng = np.random.default_rng(8)
    said_no = 0
    for trial in range(3000):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        x = np.where(rng.random((h, w)) < rng.uniform(0.3, 1.0), rng.uniform(20, 40), rng.uniform(0, 30, (h, w)))
        x = x.astype(np.float32)
        length = int(rng.integers(2, w + 3))
        if not may_run(x, length, 0.1):
            said_no += 1
            assert not (longest_runs(x, length) > 0.1 * 255).any(), (h, w, length)
    assert said_no > 300


def test_the_dust_free_box_is_the_box_of_the_mask_less_its_dust():
    """marks.dust_free_box, from the marks' boxes, against the bounding box of the mask with every mark under
    p.dust_share of the largest one's ink taken out."""
    import cv2

    from digit_recognizer.inference.reader import PARAMS
    from digit_recognizer.inference.reader.masks import bounds
    from digit_recognizer.inference.reader.marks import dust_free_box

    rng = np.random.default_rng(4)
    for trial in range(200):
        mask = rng.random((int(rng.integers(1, 90)), int(rng.integers(1, 90)))) < rng.uniform(0.01, 0.4)
        if not mask.any():
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8),
                                                             connectivity=PARAMS.crop.mark_connectivity)
        areas = stats[:, cv2.CC_STAT_AREA].copy()
        areas[0] = 0
        assert dust_free_box(mask, PARAMS.crop) == bounds(areas[labels] >= PARAMS.crop.dust_share * areas.max())


def test_colour_to_gray_decides_as_when_both_spreads_are_measured():
    """Brightness is kept without measuring the colour axis's spread only where bounds say it would win anyway:
    over inks and papers of every colour, near-grey and far from it, the answer is the one both spreads give."""
    from PIL import Image

    from digit_recognizer.inference.reader.decode import LUMA, colour_to_gray, main_axis
    from digit_recognizer.inference.reader.params import PARAMS

    p, rng, axes = PARAMS.decode, np.random.default_rng(3), 0
    for trial in range(300):
        ink, paper = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if trial % 3 == 0:  # equal brightness, different hue: only the colour axis separates them
            paper = np.clip(ink + rng.integers(-90, 90, 3) * np.array([1, -0.3, -1]), 0, 255)
        strokes = rng.random((90, 70)) < rng.uniform(0.05, 0.4)
        rgb = np.where(strokes[..., None], ink, paper) + rng.normal(0, rng.uniform(0, 12), (90, 70, 3))
        img = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
        a = np.asarray(img)
        flat = a[::max(1, 90 // p.colour_side), ::max(1, 70 // p.colour_side)].reshape(-1, 3).astype(np.float32)
        spread = lambda v: np.percentile(v, p.spread_percentile) - np.percentile(v, 100 - p.spread_percentile)
        axis = main_axis(flat)
        use_axis = spread(flat @ axis) > p.hue_gain * spread(flat @ np.array(LUMA, np.float32))
        got = colour_to_gray(img, p)
        luma = np.asarray(img.convert("L"), np.float32)
        assert np.array_equal(got, luma) != use_axis or np.array_equal(luma, a @ axis.astype(np.float32))
        axes += use_axis
    assert 20 < axes < 280  # both answers were put to the test


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 3), (200, 190)])
def test_block_edges_are_numpys_diff(shape):
    from digit_recognizer.inference.reader.blocks import edges

    rng = np.random.default_rng(5)
    g = np.round(rng.random(shape) * 4).astype(np.float32) * 60  # many equal neighbours
    for axis in (0, 1):
        d = np.diff(g, axis=axis)
        want = np.nonzero(np.abs(d).max(axis=1 - axis) >= 3.0)[0] + 1 if d.size else np.zeros(0, int)
        np.testing.assert_array_equal(edges(g, axis, 3.0), want)


def test_bounds_are_those_of_numpys_nonzero():
    from digit_recognizer.inference.reader.masks import bounds

    rng = np.random.default_rng(6)
    for shape in [(1, 1), (1, 7), (7, 1), (5, 2), (2, 5), (200, 190), (30, 3000)]:
        for density in (0, 1e-4, 0.01, 0.5, 1):
            m = rng.random(shape) < density
            for mask in (m, m[:, ::-1], m.astype(np.uint8) * 7):  # also a strided view and a non-bool mask
                ys, xs = np.nonzero(mask)
                want = None if not len(ys) else (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
                assert bounds(mask) == want


def test_the_reader_multiplies_on_one_blas_thread_and_puts_back_what_was_there(monkeypatch):
    """Inside the reader, NumPy's and OpenCV's BLAS run on the calling thread (a pool woken for a 100 x 100 product
    stalls on busy cores); afterwards the count is what it was."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import digit_recognizer.inference.reader.pipeline as pipeline
    from digit_recognizer.inference.reader.ops import one_blas_thread

    def blas() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen = []

    def polarity(x, params, facts):  # the reader's first page step, recording the BLAS threads it runs with
        seen.append(blas())
        return x, {}

    monkeypatch.setattr(pipeline, "PAGE_STEPS", (("polarity", polarity),))
    one_blas_thread()  # OpenCV loaded, so its OpenBLAS is counted below
    with threadpool_limits(limits=2, user_api="blas"):  # a pool to limit, on a machine of any size
        before = blas()
        pipeline.ink_only(np.zeros((30, 30), np.float32))
        after = blas()
    assert len(before) >= 2 and set(before) == {2}  # NumPy's OpenBLAS and OpenCV's
    assert seen == [[1] * len(before)]
    assert after == before


def test_readers_side_by_side_keep_one_blas_thread_until_the_last_leaves():
    """Threads reading at once: the first in limits BLAS, the last out puts it back, once each."""
    import threading

    from digit_recognizer.inference.reader.ops import OneBlasThread

    calls = []

    class Libraries:  # threadpoolctl's controller, as far as OneBlasThread uses it
        def limit(self, limits):
            calls.append(("limit", limits))
            return self

        def restore_original_limits(self):
            calls.append(("restore",))

    one = OneBlasThread(Libraries())
    entered, leave = threading.Event(), threading.Event()

    def reader() -> None:
        with one:
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=reader)
    with one:
        t.start()
        entered.wait(10)
    inside_after_ours = list(calls)
    leave.set()
    t.join()
    assert inside_after_ours == [("limit", 1)]
    assert calls == [("limit", 1), ("restore",)]
