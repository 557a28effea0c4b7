"""Turn a person's image of a digit into an MNIST-style 28x28 uint8 array, the way MNIST itself was made.

Steps: decode safely to grey levels (inference.decode) -> undo an enlargement without smoothing
(inference.blocks) -> make ink bright on black -> remove the background
and a lined or squared page's rulings (inference.rulings) -> refuse several digits -> crop to the ink -> even
the strokes, fit into the 28x28 frame as MNIST did, and add a view stretched towards MNIST's shapes for a very
narrow or flat digit (inference.fit) -> refuse a scribble.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..constants import IMAGE_SIZE
from ..errors import NoInk, NotADigit, SeveralDigits
from .blocks import unblocked
from .decode import BACKGROUND_SIDE, MID_GREY, ImageInput, open_image, to_gray
from .fit import INK_FRACTION, INK_LEVEL, MAX_ASPECT, Views, cropped, digit_views, resized, typical_width
from .rulings import remove_rulings

MIN_CONTRAST = 32  # grey levels between background and ink below which we call the image blank ...
NOISE_MARGIN = 8  # ... and ink must stand this many pixel-noise standard deviations above the paper
# Fainter ink counts where its edges rise as steeply as a pen's (edge_sharpness at least FAINT_EDGE_SHARPNESS),
# down to FAINT_CONTRAST levels (a faded scan, a drawing in light grey). Validation: on 500 blank pages,
# textured papers and noise, the marks 10-32 levels above the paper have edges of sharpness at most 0.15, pen
# digits at 8-12% of full contrast (17-26 levels) 0.196 or more; 500 faded pictures (8-30% of their contrast)
# read 54.2% -> 98.2% (97.2% with 12 levels), the blank pages still all refused (also with 8 levels).
FAINT_CONTRAST = 10
FAINT_EDGE_SHARPNESS = 0.18
# px of the working image: a Gaussian this wide averages a photo's grain away, not a stroke; the ink's peak, and
# which pixels the crop keeps, are judged on the image so smoothed
GRAIN_SIGMA = 1.0
LIGHTING_FRACTION = 4  # lighting varies over a quarter of the image or more
# The paper under the ink is estimated with an opening that passes over the strokes: FAT_OPENING stroke widths
# where that is wider than the lighting's (a stroke along an edge counts twice: the border is extended
# outwards). Thinner strokes get THIN_OPENING widths, at least SHADOW_SHARE of the lighting's: narrower than
# the lighting's quarter of the image, so that a shadow about that size is followed, not left as ink.
# Validation, 500 a set: a light pencil on photographed pages 96.2 -> 98.2%; chalkboard 98.4 -> 98.0%, numbers
# and the `faint` pencil -1 image each, numbers in a comb +1, 21 other sets unchanged (with 2.5 widths for thin
# strokes too, the pencil read 98.8% but chalkboard 97.8%; with 4 for fat strokes too, bold -3).
FAT_OPENING, THIN_OPENING = 2.5, 4.0
SHADOW_SHARE = 0.5
MIN_OPENING = 3  # coarse px
# coarse px: the detail is smoothed this much before the strokes' width is measured. Validation, 500 a set:
# chalkboard 98.0 -> 98.8% (fat slabs of chalk measured thin through their gaps got the thin strokes' opening),
# bold with margin +1 image, pencil on photographed pages -1, 23 other sets unchanged; 1 px: pencil -6.
STROKE_SMOOTHING = 0.5
# Per coarse px, of the detail's range: beyond halfway, edges rising more slowly than this are not a pen's. 150
# validation digits in each of 8 presentations (pen, marker, chalk, pencil): 0.13-0.23 at the 1st percentile
# (one faint pencil digit 0.04); a round shadow left in the detail 0.015-0.023; digits enlarged from 8-14 px
# 0.015-0.05, measured again too. Validation, 2,000 pencil digits on photographed pages: 1945 -> 1952 (0.15:
# the same; measured again less half the lighting's opening, not all of it: the same on validation, and low
# resolution -4 of 1,000 on the test split).
MIN_EDGE_SHARPNESS = 0.1
MAIN_STROKES = 5  # a digit's ink lies in a few connected strokes ...
MIN_STROKE_SHARE = 0.6  # ... holding at least this share of all ink; noise and texture scatter it
# Two groups of marks at least this tall and this heavy, relative to the largest, are two digits ("10": the 1
# has about a third of the 0's ink); a smaller one is a piece or a speck.
SEVERAL_HEIGHT, SEVERAL_AREA = 0.6, 0.15
SEVERAL_GAP = 0.15  # of the digits' height: blank columns between two digits (validation: 598 of 600 numbers
# refused, none of 3,000 single digits on paper)
# Holes enclosed by the strokes: 8 has two; sloppy digits sometimes three. Four or more: 0.01% of 20,000 MNIST
# training digits, none of 500 validation digits in any presentation, 22% of random scribbles.
MAX_HOLES, MIN_HOLE_PX = 3, 2
HOLE_PAPER = INK_FRACTION * 255  # a hole holds a pixel at most this bright (fit.INK_FRACTION: what is not ink)
MIN_WORKING_SIDE = 2 * IMAGE_SIZE  # px: smaller images are enlarged first (validation: no tiny digit called
# blank any more, 7 more of 3,500 tight, thin, bold, tall and wide digits read)
MIN_DIGIT_SIDE = 6  # px of the image as decoded: ink smaller than this is a speck (the low-resolution sets'
# smallest digits are 8 px)
MAX_FLATNESS = 5.0  # width / height of the ink: a dash; the flattest digits of the flat sets are under 4
# A form's box around a digit is ink along the whole border; the paper is found past it, within this share of
# the image from each edge (box lines of 1-3% inset up to 7%, validation: 186 of 200 boxed digits' polarity
# right -> 197, no change on 4,750 digits of 19 other presentations).
FRAME_DEPTH = 0.1
UNIFORM_LINE = 0.9  # share of a line's pixels on one side of halfway for it to count as all paper or all ink
# The paper left above the background's estimate (a grey veil) is the median of what lies below VEIL_FAR of full
# ink; it is taken off a single digit beyond VEIL_TOLERANCE grey levels, about what a pen's page leaves (its
# median veil 6-12 on the validation sets, a pencil's 18). Validation, 150 light-pencil digits: 134 -> 139 read;
# squared paper 97.6 -> 98.6%; the other sets within -2 to +1 of 500.
VEIL_FAR = 0.25
VEIL_TOLERANCE = 8.0
MIN_NEIGHBOUR_CORRELATION = 0.3  # pen strokes are smooth (>= 0.55 on MNIST and on photos); noise is ~0


def coarse(x: np.ndarray) -> np.ndarray:
    """A box-averaged copy at most about BACKGROUND_SIDE px on a side: lighting, polarity and stroke width
    are judged at this scale."""
    step = max(1, max(x.shape) // BACKGROUND_SIDE)
    sy, sx = min(step, x.shape[0]), min(step, x.shape[1])  # a sliver of an image keeps its one row or column
    small = x[: x.shape[0] // sy * sy, : x.shape[1] // sx * sx]
    return small.reshape(small.shape[0] // sy, sy, small.shape[1] // sx, sx).mean((1, 3))


def detail(small: np.ndarray) -> np.ndarray:
    """The image less its lighting (a blur over a quarter of the image): paper near 0 everywhere, ink far from
    it, whichever side of the page a shadow or a lamp falls on."""
    from scipy import ndimage

    return small - ndimage.gaussian_filter(small, min(small.shape) / LIGHTING_FRACTION, mode="nearest")


def ink_bright(gray: np.ndarray) -> np.ndarray:
    """Make ink bright on a dark background. The paper holds most of the border, even when the ink touches it
    (a tight crop); with the lighting removed, the paper sits on the near side of halfway between the darkest
    and the brightest marks, whatever the page's overall brightness.
    """
    d = detail(coarse(gray))
    mid = (d.min() + d.max()) / 2
    depth = max(1, int(FRAME_DEPTH * max(d.shape)))
    border = np.concatenate([edge_line(lines, mid, depth) for lines in (d, d[::-1], d.T, d.T[::-1])])
    return 255.0 - gray if np.median(border) > mid else gray


def edge_line(lines: np.ndarray, mid: float, depth: int) -> np.ndarray:
    """The values along one side of the border: `lines` (n, L) runs from that edge inwards. Lines all on one
    side of `mid` (a margin of plain paper, or a form's box line printed along the edge) are passed over, up to
    `depth` of them, to the first line that holds both paper and ink; if there is none, all of them."""
    depth = min(depth, len(lines) - 1)
    for line in lines[:depth]:
        above = float((line > mid).mean())
        if max(above, 1.0 - above) < UNIFORM_LINE:
            return line
    return lines[:max(depth, 1)].ravel()


def stroke_width(small: np.ndarray) -> float:
    """Typical width of the bright strokes in px. Strokes are what lies beyond halfway from the darkest to the
    brightest detail, so a gradient is not taken for a wide stroke; the detail is smoothed a little first, so
    that chalk's gappy strokes are measured whole, not as their grains. Where what lies beyond halfway has soft
    edges, it may be a shadow the detail kept, brighter than faint strokes beside it: the width is measured
    again on the image less its lighting's opening, which takes out a shadow wider than that, and the narrower
    width is kept."""
    from scipy import ndimage

    d = smoothed_detail(small)
    ink = beyond_halfway(d)
    width = mask_width(ink)
    if edge_sharpness(d, ink) >= MIN_EDGE_SHARPNESS:
        return width
    y = small - estimate_background(small, small.shape, lighting_opening(small))
    return min(width, mask_width(beyond_halfway(ndimage.gaussian_filter(y, STROKE_SMOOTHING))))


def smoothed_detail(small: np.ndarray) -> np.ndarray:
    """The detail smoothed by STROKE_SMOOTHING: what strokes' widths and edges are judged on."""
    from scipy import ndimage

    return ndimage.gaussian_filter(detail(small), STROKE_SMOOTHING)


def detail_sharpness(small: np.ndarray) -> float:
    """edge_sharpness of the smoothed detail's brightest marks: how steeply the strokes' edges rise, a pen's
    (MIN_EDGE_SHARPNESS or more) or a shadow's or a blur's."""
    d = smoothed_detail(small)
    return edge_sharpness(d, beyond_halfway(d))


def beyond_halfway(d: np.ndarray) -> np.ndarray:
    """(h, w) bool: what lies beyond halfway from the darkest to the brightest of d."""
    return d > (d.min() + d.max()) / 2


def mask_width(ink: np.ndarray) -> float:
    """Typical width in px of the strokes in a boolean mask (1 px for an empty one), continued past its edges."""
    return typical_width(ink, "edge") if ink.any() else 1.0


def edge_sharpness(d: np.ndarray, ink: np.ndarray) -> float:
    """How steeply d rises across the edge of `ink`, what lies beyond halfway in d: the median gradient there (per
    px) as a share of d's whole range. A pen's edge rises over a pixel or two; a shadow's over tens. A sliver of
    an image (one row or column) has no edge to judge: infinitely sharp."""
    from scipy import ndimage

    if min(d.shape) < 2:
        return float("inf")
    edge = ink & ~ndimage.binary_erosion(ink)
    spread = float(d.max() - d.min())
    if not edge.any() or spread <= 0:
        return float("inf")
    return float(np.median(np.hypot(*np.gradient(d))[edge])) / spread


def estimate_background(small: np.ndarray, shape: tuple[int, int], opening: int) -> np.ndarray:
    """The paper's brightness at every pixel of an image of `shape` (ink bright): a grey opening `opening`
    coarse pixels wide, on its coarse copy `small` because lighting and shadows vary slowly. It removes every
    stroke narrower than the opening."""
    bg = opened(small, opening)
    if opening > lighting_opening(small):  # fat strokes: the paper where it shows, carried smoothly under them
        bg = paper_under_strokes(small, bg)
    return resized(bg, shape[::-1], Image.Resampling.BILINEAR)


def opened(small: np.ndarray, k: int) -> np.ndarray:
    """A grey opening k px wide, averaged over k px: the paper's level wherever strokes are narrower than k."""
    from scipy import ndimage

    return ndimage.uniform_filter(ndimage.grey_opening(small, size=(k, k), mode="nearest"), size=k,
                                  mode="nearest")


def paper_under_strokes(small: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The opening `flat` spans the image, so it is the darkest paper everywhere: a smooth surface fitted to the
    paper beside the strokes instead (inference.surface), where enough of it shows and the strokes' edges are a
    pen's (MIN_EDGE_SHARPNESS). A tiny digit enlarged has no paper apart from its blur: a surface fitted to the
    blur would cut into the strokes (validation, 2,000 bold digits a set: the same with or without the test)."""
    from .surface import paper_surface

    if detail_sharpness(small) < MIN_EDGE_SHARPNESS:
        return flat
    surface = paper_surface(small, flat)
    return flat if surface is None else surface


def lighting_opening(small: np.ndarray) -> int:
    """A quarter of the longer side: in a narrow crop (a tight 1) the window still reaches the paper beside
    the stroke, while lighting, which varies over a page, is still followed."""
    return max(3, max(small.shape) // 4)


def stroke_opening(small: np.ndarray) -> int:
    """An opening wide enough to pass over the strokes, however much of the frame they fill (a bold digit
    cut out tight), and for thin strokes no wider than need be, so that it follows a shadow's edge."""
    width, lighting = stroke_width(small), lighting_opening(small)
    fat = int(np.ceil(FAT_OPENING * width)) + 1
    if fat >= lighting:
        return fat
    thin = int(np.ceil(THIN_OPENING * width)) + 1
    return min(lighting, max(thin, int(SHADOW_SHARE * lighting), MIN_OPENING))


def pixel_noise(y: np.ndarray) -> float:
    """Standard deviation of pixel noise, from neighbour differences (robust: edges are a minority of pixels,
    however much of the image the ink covers)."""
    d = np.concatenate([np.diff(y, axis=0).ravel(), np.diff(y, axis=1).ravel()])
    return 1.4826 * float(np.median(np.abs(d))) / np.sqrt(2.0) if d.size else 0.0


def stands_out(y: np.ndarray, contrast: float = MIN_CONTRAST) -> bool:
    """Whether the brightest smoothed mark in y rises clearly above the paper's own noise, and `contrast` grey
    levels above the paper at least."""
    from scipy import ndimage

    peak = float(ndimage.gaussian_filter(y, GRAIN_SIGMA).max())
    return peak >= max(contrast, NOISE_MARGIN * pixel_noise(y))


def faint_but_sharp(small: np.ndarray, y: np.ndarray) -> bool:
    """Whether y holds faint ink (FAINT_CONTRAST levels or more) whose edges are a pen's: a faded scan or a
    light-grey drawing, not a blank page's texture or a shadow, whose marks rise over many px."""
    return stands_out(y, FAINT_CONTRAST) and detail_sharpness(small) >= FAINT_EDGE_SHARPNESS


def remove_background(x: np.ndarray, name: str) -> np.ndarray:
    """Subtract the (possibly uneven) paper level and stretch the ink to 255; raise NoInk if nothing stands
    out of the paper's own noise (texture, grain, JPEG) by a clear margin.
    """
    from scipy import ndimage

    # Whether there is ink at all is judged against the lighting (openings a quarter of the image wide), so a
    # shadow on a blank page is not ink: marks brighter than the paper around them, or, where fat strokes fill
    # the frame, the gaps of paper between them, darker than the strokes around them.
    small = coarse(x)
    lighting = lighting_opening(small)
    y = x - estimate_background(small, x.shape, lighting)
    gaps = -estimate_background(-small, x.shape, lighting) - x
    if not (stands_out(y) or stands_out(gaps) or faint_but_sharp(small, y)):
        raise NoInk(f"{name}: no ink found (blank or nearly uniform image)")
    # Then the paper is estimated past the strokes' whole width, so that fat strokes keep their middles, and
    # no further, so that it follows the shadows.
    strokes = stroke_opening(small)
    if strokes != lighting:
        y = x - estimate_background(small, x.shape, strokes)
    smooth = ndimage.gaussian_filter(y, GRAIN_SIGMA)
    peak = max(float(smooth.max()), 1.0)
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


def without_veil(x: np.ndarray) -> np.ndarray:
    """x (ink bright, 0..255) less the grey veil that a textured page leaves over faint ink (a pencil): the
    background's opening follows the page's lower envelope, so the paper sits a few noise levels above it. The
    veil's excess over VEIL_TOLERANCE is taken off and the ink stretched back to 255."""
    far = x <= VEIL_FAR * 255
    veil = float(np.median(x[far])) - VEIL_TOLERANCE if far.any() else 0.0
    return np.clip((x - veil) * (255.0 / (255.0 - veil)), 0, 255) if veil > 0 else x


def ink_mask(x: np.ndarray) -> np.ndarray:
    """(h, w) bool: the pixels of x (ink bright) above the crop's threshold that still hold ink once the image is
    smoothed by GRAIN_SIGMA. A grainy photo of faint ink, its contrast stretched to full, leaves single grains
    above the threshold all over the page: they would widen the crop to the page and pass for hairline strokes,
    which are then thickened into a blob. A shape's edges are kept where they were (the unsmoothed threshold)."""
    from scipy import ndimage

    mask = x > INK_FRACTION * 255
    strokes = mask & (ndimage.gaussian_filter(x, GRAIN_SIGMA) > INK_FRACTION * 255)
    return strokes if strokes.any() else mask


def crop_to_ink(x: np.ndarray, name: str) -> np.ndarray:
    """x cut to its ink, less the dust that would widen the crop: a grain a few px across that outlasted the
    smoothing, far from the digit (as the number reader leaves it out, `groups.without_dust`)."""
    from .groups import without_dust

    x = without_veil(x)
    mask = ink_mask(x)
    if not mask.any():
        raise NoInk(f"{name}: no ink found")
    check_strokes(x, mask, name)  # on every mark: ink scattered over many pieces is noise, not dust
    return cropped(x, without_dust(mask))


def is_mnist_like(gray: np.ndarray) -> bool:
    """Already 28x28 with a dark background: pass through untouched."""
    return gray.shape == (IMAGE_SIZE, IMAGE_SIZE) and np.median(gray) < MID_GREY


def preprocess(src: ImageInput, name: str = "image") -> np.ndarray:
    """Any supported image -> (28, 28) uint8, ink 255 on background 0: the digit as the model reads it first."""
    return preprocess_views(src, name).images[0]


def preprocess_views(src: ImageInput, name: str = "image") -> Views:
    """Any supported image -> Views of (V, 28, 28) uint8: the digit, and for a very narrow or flat one the digit
    stretched towards MNIST's shapes too (inference.fit); the model's answers for the views are averaged."""
    if isinstance(src, (str, Path)):
        name = str(src)
    gray = to_gray(open_image(src, name))
    if is_mnist_like(gray):
        if gray.max() < MIN_CONTRAST:
            raise NoInk(f"{name}: no ink found (blank image)")
        return Views(gray.astype(np.uint8)[None])
    gray = unblocked(gray)
    work = enlarged(gray)
    x = ink_only(work, name)
    refuse_several(x, name)
    crop = crop_to_ink(x, name)
    refuse_speck_or_dash(crop, work.shape[0] / gray.shape[0], name)
    views = digit_views(crop)
    refuse_tangle(views.images[0], name)
    return views


def ink_only(work: np.ndarray, name: str) -> np.ndarray:
    """A grey image at working size -> its ink alone, bright on black: the polarity set, the paper's lighting and
    a page's printed lines (rulings, a form's boxes) taken out. A single digit and a number both start here."""
    return remove_rulings(remove_background(ink_bright(work), name))


def refuse_speck_or_dash(crop: np.ndarray, scale: float, name: str) -> None:
    """Refuse ink that no digit makes: a speck (`scale`: working px per px of the image as decoded) or a dash."""
    h, w = crop.shape
    if max(h, w) / scale < MIN_DIGIT_SIDE:
        raise NotADigit(f"{name}: not a digit (a speck {max(h, w) / scale:.0f} px across)")
    if w > MAX_FLATNESS * h:
        raise NotADigit(f"{name}: not a digit (a dash, {w / h:.0f} times as wide as tall)")


def enlarged(gray: np.ndarray) -> np.ndarray:
    """A tiny image (a digit cut out at 15 px, say) enlarged to MIN_WORKING_SIDE on its longer side: at a few
    pixels per stroke, edges are most of the image and would be taken for noise the ink cannot stand out of."""
    if max(gray.shape) >= MIN_WORKING_SIDE:
        return gray
    f = MIN_WORKING_SIDE / max(gray.shape)
    size = (max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f)))
    return np.clip(resized(gray, size, Image.Resampling.BICUBIC), 0, 255)


def enclosed_holes(x: np.ndarray) -> int:
    """Paper regions of at least MIN_HOLE_PX that the strokes of a (28, 28) digit enclose: 0 in a 1, 1 in a
    6, 2 in an 8. A region counts only if some of it is clearly paper (at most HOLE_PAPER): a fat marker's
    pinhole, thinned, leaves a mid-grey patch in the digit whose pixel noise around INK_LEVEL would count as
    many holes."""
    from scipy import ndimage

    padded = np.pad(x, 1)
    paper, n = ndimage.label(padded <= INK_LEVEL)  # 4-connected
    sizes = np.bincount(paper.ravel())
    darkest = ndimage.minimum(padded, paper, index=np.arange(n + 1))
    return sum(1 for i in range(1, n + 1)
               if i != paper[0, 0] and sizes[i] >= MIN_HOLE_PX and darkest[i] <= HOLE_PAPER)


def refuse_tangle(x: np.ndarray, name: str) -> None:
    """Refuse a scribble: strokes crossing so often that they enclose more holes than any digit has."""
    holes = enclosed_holes(x)
    if holes > MAX_HOLES:
        raise NotADigit(f"{name}: not a digit (a scribble: the strokes enclose {holes} holes; an 8 has 2)")


def refuse_several(x: np.ndarray, name: str) -> None:
    """Refuse an image that holds several digits side by side (a number given to single-digit prediction):
    marks grouped into digits as the number reader groups them, two or more of them digit-sized."""
    from .groups import digit_groups

    _, groups = digit_groups(x, name)
    if len(groups) < 2:
        return
    tallest, largest = max(g.height for g in groups), max(g.area for g in groups)
    digits = [g for g in groups if g.height >= SEVERAL_HEIGHT * tallest and g.area >= SEVERAL_AREA * largest]
    if len(digits) < 2:
        return
    # A 0 whose faint strokes broke into "(" and ")" is two groups too: side by side means wider together than
    # a digit, or apart by a clear gap.
    height = max(g.y1 for g in digits) - min(g.y0 for g in digits)
    width = max(g.x1 for g in digits) - min(g.x0 for g in digits)
    ordered = sorted(digits, key=lambda g: g.x0)
    gap = max(b.x0 - a.x1 for a, b in zip(ordered, ordered[1:]))
    if width > MAX_ASPECT * height or gap >= SEVERAL_GAP * height:
        raise SeveralDigits(f"{name}: {len(digits)} digits side by side, not one (read it as a number)")
