"""Preprocessing people's images into MNIST form, and refusing bad ones with a clear message."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digit_recognizer import Recognizer
from digit_recognizer.errors import DigitsError, TooLarge
from digit_recognizer.inference.reader import PARAMS, fit_and_centre, ink_only, preprocess, read_digit
from digit_recognizer.inference.reader import background as bg_step
from digit_recognizer.inference.reader import crop as crop_step
from digit_recognizer.inference.reader.fit import fit, strokes, views
from digit_recognizer.inference.reader.masks import bounds
from digit_recognizer.inference.reader.polarity import polarity

NARROW_VIEW, SQUEEZED = PARAMS.views.narrow, PARAMS.views.squeezed
preprocess_views = read_digit


def with_params(group: str, **values):
    """The reader's parameters with some values of one group changed."""
    from dataclasses import replace

    return replace(PARAMS, **{group: replace(getattr(PARAMS, group), **values)})


def crop_to_ink(x: np.ndarray, params=PARAMS) -> np.ndarray:
    """The crop step's cut of one digit from an ink-bright image."""
    return crop_step.crop(np.asarray(x, np.float32), params, {"scale": 1.0})[0][0].image


def digit_views(crop: np.ndarray):
    """The strokes, fit and views steps on a crop of ink."""
    seen: dict = {}
    for step in (strokes, fit, views):
        crop, facts = step(crop, PARAMS, seen)
        seen.update(facts)
    return crop


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer.load()


def on_paper(digit: np.ndarray, scale: float, canvas=(480, 640), offset=(0.3, 0.6), ink=20, paper=235):
    """An MNIST digit (bright on black) drawn as dark ink on a large light page, scaled and off-centre."""
    size = max(1, int(round(28 * scale)))
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    page = np.full(canvas, paper, np.float32)
    top, left = int(offset[0] * (canvas[0] - size)), int(offset[1] * (canvas[1] - size))
    region = page[top:top + size, left:left + size]
    page[top:top + size, left:left + size] = region * (1 - big) + ink * big
    return np.clip(page, 0, 255).astype(np.uint8)


def ring(shape: tuple[int, int], centre: tuple[int, int], radius: float, half_width: float) -> np.ndarray:
    """(h, w) bool: a 0 drawn as a ring, `radius` px to the middle of its stroke."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.abs(np.hypot(yy - centre[0], xx - centre[1]) - radius) < half_width


def test_mnist_like_passes_through_unchanged(mnist):
    for i in range(20):
        x = mnist.test.images[i].numpy()
        np.testing.assert_array_equal(preprocess(x), x)
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, format="PNG")
        np.testing.assert_array_equal(preprocess(buf.getvalue()), x)


@pytest.mark.parametrize("scale", [2.0, 5.0, 12.0])
def test_digits_on_paper_read_like_originals(mnist, recognizer, scale):
    n = 200
    originals = mnist.test.images[:n].numpy()
    rng = np.random.default_rng(int(scale))
    pages = [on_paper(d, scale, offset=tuple(rng.uniform(0.05, 0.95, 2))) for d in originals]
    want = np.array([p.digit for p in recognizer.predict_arrays(originals)])
    got = np.array([p.digit for p in recognizer.predict_many(pages)])
    labels = mnist.test.labels[:n].numpy()
    assert (got == want).mean() >= 0.97
    assert (got == labels).mean() >= (want == labels).mean() - 0.03


def test_steps():
    page = on_paper(np.pad(np.full((10, 4), 255, np.uint8), 9), 6.0)  # a thick "1" on paper
    x, facts = polarity(page.astype(np.float32), PARAMS)
    assert facts["inverted"] and x[0, 0] < 50 and x.max() > 200  # background dark, ink bright
    y, facts = bg_step.background(x + 30, PARAMS)  # a grey background level is removed
    assert y[0, 0] == 0 and y.max() == 255 and facts["stroke_px"] > 20  # the 1 is 24 px wide
    crop = crop_to_ink(y)
    assert crop.shape[0] > crop.shape[1] > 0 and crop.shape[0] < 100
    out = fit_and_centre(crop)
    rows, cols = np.nonzero(out > 64)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 < 20
    cy, cx = ndimage.center_of_mass(out.astype(float))
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "GIF"])
def test_formats(mnist, recognizer, tmp_path, fmt):
    digit = mnist.test.images[0].numpy()  # a 7
    page = Image.fromarray(on_paper(digit, 6.0))
    if fmt == "GIF":  # the first frame is the digit, the second is blank
        blank = Image.new("L", page.size, 235)
        data = save(page, fmt, save_all=True, append_images=[blank])
    else:
        data = save(page.convert("RGB") if fmt == "JPEG" else page, fmt)
    path = tmp_path / f"digit.{fmt.lower()}"
    path.write_bytes(data)
    assert recognizer.predict(path).digit == int(mnist.test.labels[0])


def test_transparent_drawing(mnist, recognizer):
    alpha = np.asarray(Image.fromarray(mnist.test.images[1].numpy()).resize((280, 280)))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = alpha  # black strokes on a clear canvas, as a drawing app exports them
    assert recognizer.predict(Image.fromarray(rgba, "RGBA")).digit == int(mnist.test.labels[1])


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello, I am text"), "not an image"),
    (lambda p: p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "a PDF document, not an image: export"),
    (lambda p: p.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)), "a HEIC/HEIF photo"),
    (lambda p: p.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'), "an SVG drawing"),
    (lambda p: p.write_text("\ufeff<!DOCTYPE html><html><body>404</body></html>"), "a web page \\(HTML\\)"),
    (lambda p: p.write_bytes(save(Image.new("L", (300, 200), 240), "PNG")), "no ink"),
    (lambda p: p.write_bytes(save(Image.new("L", (300, 200), 10), "PNG")), "no ink"),
    (lambda p: p.write_bytes(save(Image.new("1", (9000, 6000)), "PNG")), "too large"),
    (lambda p: p.write_bytes(save(Image.effect_noise((400, 400), 80), "PNG")[:300]), "truncated or corrupt"),
])
def test_bad_images(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(DigitsError, match=message) as e:
        preprocess(path)
    assert str(path) in str(e.value)


def test_a_web_address_is_named_as_one(tmp_path):
    """A URL handed over as a path is not a missing file: the error says to download it first."""
    for url in ("https://example.com/digit.png", Path("http://example.com/digit.png")):
        with pytest.raises(DigitsError, match="a web address, not a file: download the image"):
            preprocess(url)
    with pytest.raises(DigitsError, match="file not found"):
        preprocess(tmp_path / "https-not-a-url.png")


def test_images_are_never_named_as_another_kind():
    """kind_of names a file only by a signature that no image format Pillow reads starts with."""
    from digit_recognizer.inference.reader.kinds import kind_of

    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        assert kind_of(save(Image.new("RGB", (40, 30), 200), fmt)) is None, fmt
    assert kind_of(b"") is None and kind_of(bytes(range(256)) * 8) is None


def test_huge_pixel_cap_is_checked_before_decoding(monkeypatch):
    from PIL import ImageFile

    big = io.BytesIO()
    Image.new("1", (9000, 6000)).save(big, format="PNG")  # 54 Mpx in a few kB: over our cap, under Pillow's
    def no_decoding(self, *a, **k):
        raise AssertionError("the pixels were decoded before the size check")
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(TooLarge, match="too large"):
        preprocess(big.getvalue())
    monkeypatch.undo()
    with pytest.raises(DigitsError, match="array"):
        preprocess(np.zeros((3, 3, 7)))
    with pytest.raises(DigitsError, match="NaN"):
        preprocess(np.full((28, 28), np.nan))


@pytest.mark.parametrize("tight", [False, True])
def test_several_digits_are_refused_but_one_digit_in_pieces_is_not(mnist, tight):
    from digit_recognizer.errors import SeveralDigits
    from digit_recognizer.testing.synth import compose

    rng = np.random.default_rng(7)
    for k in range(10):
        digits = [mnist.test.images[i].numpy() for i in rng.integers(0, 1000, size=int(rng.integers(2, 5)))]
        with pytest.raises(SeveralDigits, match="read it as a number"):
            preprocess(compose(digits, rng, single=False, tight=tight))
    five = np.full((200, 200), 255, np.uint8)  # a 5 whose top bar was written apart from its body
    five[40:50, 60:150] = 0
    five[62:110, 60:72] = 0
    five[100:112, 60:140] = 0
    five[100:170, 130:142] = 0
    five[160:172, 60:140] = 0
    assert preprocess(five).max() == 255


def test_a_scribble_is_refused_but_an_eight_is_not(recognizer):
    """The model has learned what is not a digit: no rule counts a scribble's holes."""
    from PIL import ImageDraw

    def drawn(draw_on) -> bytes:
        img = Image.new("L", (280, 280), 255)
        draw_on(ImageDraw.Draw(img))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def hatching(d):  # strokes crossing in a grid: 16 enclosed holes
        for k in range(5):
            d.line([(40 + 45 * k, 40), (40 + 45 * k, 240)], fill=0, width=20)
            d.line([(40, 40 + 45 * k), (240, 40 + 45 * k)], fill=0, width=20)

    def eight(d):  # two loops: two holes, a digit
        d.ellipse([90, 30, 190, 130], outline=0, width=18)
        d.ellipse([80, 120, 200, 250], outline=0, width=18)

    scribble, digit = recognizer.predict(drawn(hatching)), recognizer.predict(drawn(eight))
    # refused by the model (its digit score), not by a rule of the reader
    assert scribble.refused and scribble.why is None and scribble.reason.startswith("not a digit (")
    assert digit.digit == 8 and not digit.refused


def test_tiny_crops_are_read_not_called_blank(mnist, recognizer):
    """Digits cut out tight at 9-16 px, dark on light grey, as a form reader hands them over."""
    rng = np.random.default_rng(5)
    results = []
    for i in range(40):
        digit = mnist.test.images[i].numpy()
        ys, xs = np.nonzero(digit > 30)
        crop = 255 - digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        h = int(rng.integers(9, 17))
        w = max(3, round(crop.shape[1] * h / crop.shape[0] * rng.uniform(1.0, 2.0)))
        small = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR), np.float32)
        small = small * 0.7 + 60  # grey paper, dark grey ink
        buf = io.BytesIO()
        Image.fromarray(small.astype(np.uint8)).save(buf, format="PNG")
        results.append(recognizer.predict_many([buf.getvalue()])[0])
    blank = [r for r in results if isinstance(r, DigitsError) or r.digit is None]
    assert not blank, [str(b) for b in blank]
    right = sum(r.digit == int(mnist.test.labels[i]) for i, r in enumerate(results))
    assert right >= 32, right


def ink_aspect(x: np.ndarray) -> float:
    """Width / height of the ink's bounding box in a (28, 28) view."""
    rows, cols = np.nonzero((x > 64).any(1))[0], np.nonzero((x > 64).any(0))[0]
    return (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1)


@pytest.mark.parametrize("aspect,views,second", [(0.7, 1, None), (0.25, 2, NARROW_VIEW), (1.0, 2, SQUEEZED),
                                                 (2.5, 2, SQUEEZED)])
def test_very_narrow_and_flat_digits_are_also_read_stretched(aspect, views, second):
    """A ring drawn `aspect` times as wide as tall: an ordinary shape is read once; a very narrow one also
    stretched to NARROW_VIEW, and one as wide as tall also squeezed to SQUEEZED; the first view is always as
    fit_and_centre makes it."""
    h = 240
    img = Image.new("L", (round(h * aspect), h), 235)
    ImageDraw.Draw(img).ellipse([8, 8, img.size[0] - 9, h - 9], outline=20, width=5)
    out = preprocess_views(save(img, "PNG")).images
    assert out.shape == (views, 28, 28) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], preprocess(save(img, "PNG")))
    if second is not None:
        assert ink_aspect(out[1]) == pytest.approx(second, rel=0.2)
        assert abs(ink_aspect(out[1]) - second) < abs(ink_aspect(out[0]) - second)


@pytest.mark.parametrize("pen,views", [(3, 2), (70, 1)])  # strokes of 0.25 and 5.8 digit-box px
def test_a_markers_flat_digit_is_read_once(pen, views):
    """Squeezing a flat digit helps a pen's strokes; a marker's blob is read as it is, marked as a marker's."""
    img = Image.new("L", (240, 160), 0)
    ImageDraw.Draw(img).line([(30, 130), (120, 30), (210, 130)], fill=255, width=pen)  # a flat, wide V
    out = digit_views(np.asarray(img, np.float32))
    assert out.images.shape == (views, 28, 28) and out.marker == (views == 1)


def test_prediction_averages_the_views(recognizer):
    img = Image.new("L", (50, 200), 235)
    ImageDraw.Draw(img).ellipse([8, 8, 41, 191], outline=20, width=12)
    views = preprocess_views(save(img, "PNG"))
    p = recognizer.predict(save(img, "PNG"))
    want = recognizer.probabilities(views.images, [views.marker] * len(views.images)).mean(0)
    assert p.digit == int(want.argmax()) and p.confidence == pytest.approx(float(want.max()), abs=1e-6)


@pytest.mark.parametrize("mark,reason", [((139, 139, 141, 141), "speck"), ((138, 138, 142, 142), "speck"),
                                         ((60, 131, 220, 149), "dash"), ((20, 135, 260, 141), "dash")])
def test_a_speck_or_a_dash_is_not_a_digit(mark, reason):
    """An accidental tap or a minus sign on the page was read as a 5 or a 2 with high confidence."""
    img = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(img).ellipse(mark, fill=0) if reason == "speck" else ImageDraw.Draw(img).rectangle(mark, fill=0)
    with pytest.raises(DigitsError, match=rf"not a digit \(a {reason}"):
        preprocess(save(img, "PNG"))


def test_a_grainy_digits_crop_is_the_digit_not_the_page(monkeypatch):
    """Faint ink on a grainy photo, stretched to full: single grains pass the crop's threshold all over the page.
    The crop is the ring; with the threshold alone (and no dust left out) it is the whole page."""
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0, 25, (240, 240)), 0, 255)  # (h, w) ink-bright grain: ~0.5% above a quarter of full
    x[ring(x.shape, (120, 120), 30, 4)] = 255  # a 0, 68 px across
    assert max(crop_to_ink(x).shape) < 80
    monkeypatch.setattr(crop_step, "ink_mask", lambda x, params: x > params.ink.seen * 255)
    monkeypatch.setattr(crop_step, "dust_free_box", lambda mask, p: bounds(mask))  # the other defence, below
    assert max(crop_to_ink(x).shape) > 200


def test_specks_far_from_the_digit_do_not_widen_its_crop(monkeypatch):
    """A few grains of a photo's grain outlast the crop's smoothing, far from a faint digit: they are dust (as
    the number reader leaves dust out), and the crop is the digit's."""
    x = np.zeros((300, 300), np.float32)  # (h, w) ink bright
    x[ring(x.shape, (150, 150), 30, 4)] = 255  # a 0, 68 px across, about 1,500 px of ink
    for y0, x0 in ((10, 12), (280, 20), (15, 285), (270, 290)):
        x[y0:y0 + 2, x0:x0 + 2] = 255  # 4 px each
    assert max(crop_to_ink(x).shape) < 80
    monkeypatch.setattr(crop_step, "dust_free_box", lambda mask, p: bounds(mask))
    assert max(crop_to_ink(x).shape) > 250


def test_a_faint_digit_beside_a_shadow_is_cut_out_without_it(monkeypatch):
    """A shadow a third of the page across, beside a faint digit: an opening a quarter of the page wide cannot
    follow it, and what is left of it is cut out with the digit. One sized by the strokes follows it."""
    yy, xx = np.mgrid[0:300, 0:300]
    page = 200 - 30 * np.exp(-((yy - 110) ** 2 + (xx - 120) ** 2) / (2 * 45.0 ** 2))  # (h, w) grey, the shadow
    page += np.random.default_rng(0).normal(0, 2, page.shape)
    page[ring(page.shape, (170, 170), 14, 2)] -= 45  # a 0 in a light pencil, 32 px across

    def crop() -> tuple[int, int]:
        return crop_to_ink(ink_only(page)).shape

    assert max(crop()) < 40
    monkeypatch.setattr(bg_step.Coarse, "stroke_opening", lambda c, p: c.lighting)  # the lighting's opening alone
    monkeypatch.setattr(crop_step, "dust_free_box", lambda mask, p: bounds(mask))  # and every bit left kept
    assert max(crop()) > 100


def test_a_shadow_darker_than_the_ink_is_not_measured_as_a_stroke(monkeypatch):
    """A round shadow left in the detail, brighter there (ink bright) than a light pencil's digit beside it:
    measured as the strokes, it sized the background's opening past the shadow, which was then cut out with the
    digit. Its soft edges give it away; the strokes are measured again without it."""
    yy, xx = np.mgrid[0:400, 0:400]
    page = 200 - 60 * np.exp(-((yy - 280) ** 2 + (xx - 290) ** 2) / (2 * 90.0 ** 2))  # (h, w) grey, the shadow
    page += np.random.default_rng(0).normal(0, 2, page.shape)
    page[ring(page.shape, (120, 110), 16, 2)] -= 40  # a 0 in a light pencil, 36 px across
    page = page.astype(np.float32)

    def crop(params=PARAMS) -> tuple[int, int]:
        return crop_to_ink(ink_only(page, params), params).shape

    assert max(crop()) < 40  # 35
    # The first measurement always kept (and the image not shrunk to the shadow's height, which that would ask):
    assert max(crop(with_params("background", min_sharpness=0.0, shrink_below=0.0))) > 200


@pytest.mark.parametrize("shape, coarse_shape", [
    ((100, 80), (100, 80)),  # no longer than `side`: the image itself
    ((200, 150), (100, 75)),  # a digit's photo up to twice `side`: judged at half its size
    ((154, 57), (154, 57)),  # a flat number in a comb of boxes: halved, it would keep 28 rows
    ((200, 120), (200, 120)),  # a number 120 px tall: halved, its digits would stand 60 px tall
    ((400, 400), (133, 133)),  # larger: the largest whole blocks that leave at least `side`
    ((620, 1000), (88, 142)),
])
def test_the_coarse_copy_is_averaged_in_whole_blocks_to_about_side(shape, coarse_shape):
    p = PARAMS.background
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    small = bg_step.coarse(x, p)
    assert small.shape == coarse_shape
    step = shape[0] // coarse_shape[0]
    assert np.allclose(small[0, 0], x[:step, :step].mean(), atol=1e-3)  # a whole block averaged


def test_a_slab_of_chalk_is_measured_whole_not_by_its_grains(monkeypatch):
    """A 1 drawn as a fat slab of chalk: its cover varies grain by grain. Measured on the detail as it is, the
    gaps make it a thin stroke (and the background's opening would be sized for one); smoothed a little, whole."""
    rng = np.random.default_rng(0)
    small = np.full((120, 80), 40, np.float32)  # (h, w) coarse copy: a dark board
    slab = np.zeros(small.shape, bool)
    slab[20:100, 25:55] = True  # 30 px wide
    small[slab] = 40 + 180 * np.clip(rng.normal(0.85, 0.2, small.shape), 0, 1)[slab]
    assert bg_step.Coarse.measure(small, PARAMS.background).width > 9  # 10.8
    assert bg_step.Coarse.measure(small, with_params("background", stroke_smoothing=0).background).width < 7


def test_dust_is_not_counted_among_a_pages_marks():
    """Hundreds of single grains beside a stroke are dust, not marks to group (nor a flood to refuse); hundreds
    of marks of one size still are."""
    from digit_recognizer.errors import NotADigit
    from digit_recognizer.inference.reader.marks import marks
    from digit_recognizer.inference.reader.masks import components

    mask = np.zeros((400, 400), bool)
    mask[150:250, 190:200] = True  # a 1
    mask[::12, ::12] = True  # 1,156 grains
    def every(m: np.ndarray):  # every mark of m, as stroke_components gives them
        labels, stats = components(m, PARAMS.crop.mark_connectivity)
        return labels, stats, np.arange(1, len(stats))

    _, found = marks(*every(mask), PARAMS.crop)
    assert [(m.x0, m.y0, m.width, m.height) for m in found] == [(190, 150, 10, 100)]
    flood = np.zeros((400, 400), bool)
    for k in range(PARAMS.crop.max_marks + 1):
        y, x = divmod(k, 25)
        flood[y * 12:y * 12 + 4, x * 12:x * 12 + 4] = True
    with pytest.raises(NotADigit, match="separate marks"):
        marks(*every(flood), PARAMS.crop)


def test_a_small_digit_is_not_a_speck():
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(100, 90), (100, 99)], fill=0, width=2)  # a 1, 10 px tall
    out = preprocess(save(img, "PNG"))
    rows, cols = np.nonzero(out > 127)
    assert out.max() == 255 and rows.max() - rows.min() + 1 >= 18  # fitted to MNIST's 20-px box ...
    assert cols.max() - cols.min() + 1 <= 6 and abs(cols.mean() - 13.5) <= 1.5  # ... an upright stroke, centred


def test_a_faint_digits_crop_leaves_the_pages_grey_veil_out(monkeypatch):
    """Faint ink on a textured page: once the ink is stretched to full, the paper left above the background's
    estimate is a grey veil reaching the crop's threshold in places. The crop is the ring, not the veil."""
    rng = np.random.default_rng(0)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (240, 240)), 2.0)
    x = np.clip(42 + 9 * texture / texture.std(), 0, None)  # (h, w) ink-bright: the veil, peaks near 30% of full
    x[ring(x.shape, (120, 120), 30, 4)] = 255  # a 0, 68 px across
    assert max(crop_to_ink(x).shape) < 80
    monkeypatch.setattr(crop_step, "without_veil", lambda x, p: x)
    try:
        assert max(crop_to_ink(x).shape) > 200  # the veil's peaks widen the crop to the page ...
    except DigitsError:
        pass  # ... or are ink scattered like noise


def test_a_phone_sized_jpeg_is_decoded_smaller_and_its_digits_boxed_in_its_own_pixels():
    """A 4032x3024 photo is decoded at half its size straight from the JPEG (not decoded whole, then shrunk),
    and `read` still gives each digit's box in the photo's own pixels, as it does for the same page as a PNG."""
    from digit_recognizer.inference.reader.decode import loaded, unopened

    page = Image.new("RGB", (4032, 3024), (235, 232, 228))
    draw = ImageDraw.Draw(page)
    draw.line([(1000, 1200), (1000, 1800)], fill=(20, 20, 30), width=60)  # a 1
    draw.ellipse([1600, 1200, 2000, 1800], outline=(20, 20, 30), width=60)  # a 0
    encoded = {}
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        page.save(buf, fmt, quality=90)
        encoded[fmt] = buf.getvalue()
    side = PARAMS.decode.working_side
    decoded = loaded(unopened(encoded["JPEG"]), side=side)
    assert side <= max(decoded.size) <= 4032 // 2  # 1/2 .. 1/8 scale, still at least the working side
    rec = Recognizer.load()
    jpeg, png = rec.read(encoded["JPEG"]), rec.read(encoded["PNG"])
    assert len(jpeg.boxes) == len(png.boxes) == 2
    for a, b in zip(jpeg.boxes, png.boxes):
        assert np.abs(np.subtract(a, b)).max() <= 0.01 * 4032  # the same boxes, to 1% of the photo
    assert 900 <= jpeg.boxes[0][0] <= 1000 and 1550 <= jpeg.boxes[1][0] <= 1620


@pytest.mark.parametrize("sharpness, cleared", [(0.3, True), (0.05, False)])
def test_the_paper_around_a_pens_digit_is_cleared(sharpness, cleared):
    """A faint 0 on a grainy page with a shadow's gradient, stretched to full: around a pen's sharp edges, what
    lies more than a few px from the 0's marks is the page, and the crop clears it (MNIST's paper is black); a
    blurred image's strokes fade out further than that, and its crop is kept as it is."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:240]
    x = np.clip(rng.normal(20, 12, (240, 240)) + 0.2 * xx, 0, 255)  # (h, w) ink-bright grain over a gradient
    x[ring(x.shape, (120, 120), 30, 4)] = 255  # a 0, 68 px across
    (cut,), facts = crop_step.crop(x.astype(np.float32), PARAMS, {"scale": 1.0, "edge_sharpness": sharpness})
    assert facts["paper_cleared"] is cleared
    inside = cut.image[cut.image.shape[0] // 2 - 5:cut.image.shape[0] // 2 + 5, 30:38]  # (10, 8): the 0's hole
    assert bool(inside.max() == 0) == cleared and inside.max() < 255
    assert cut.image.max() == 255  # the strokes kept
