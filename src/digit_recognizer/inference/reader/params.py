"""Every value the image reader was tuned with, in one frozen object grouped by step.

Each value says what it means and in what unit; `§ Title` names the section of docs/experiments.md where it was
chosen, and `tests/test_reader.py` (the `reader` tier) re-measures the sets it was chosen on against the baseline
in tests/reader_baseline.json. Levels of ink are shares of full ink (255) on the image with ink bright on black.

    PARAMS: ReaderParams                     # the reader's defaults
    reader_version(params) -> "r1-1a2b3c4d"  # the steps' revision and a hash of the values (model.json records it)
    fit_version(params) -> "f1-1a2b3c4d"     # the same for the fitting alone (a marker reader needs its own)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ...constants import MNIST_STROKES


@dataclass(frozen=True)
class Ink:
    """What ink is: one scale for every step (shares of full ink)."""
    seen: float = 0.25  # a pixel holds ink above this; below, paper (crop, holes, dust)
    inside: float = 0.5  # a pixel lies inside a stroke above this (stroke widths, evening, rulings' neighbours)
    strong: float = 0.35  # a mark holds some pixels this bright ... (§ A pen running dry)
    faint: float = 0.15  # ... and runs on through pixels this bright (a thin pen's faint stretches)
    line: float = 0.1  # a printed line's pixels are at least this bright once the paper is removed
    paper: float = 0.03  # paper beside a printed line is no brighter than this (§ Lined and squared paper)


@dataclass(frozen=True)
class Decode:
    """Bytes -> grey levels at the working size (§ Any digit; § Tiny images; § Blocky enlargements)."""
    working_side: int = 1024  # px: a larger image is box-averaged to this on its longer side first
    min_side: int = 56  # px: a smaller image is enlarged (bicubic) to this, so edges are not taken for noise
    colour_side: int = 64  # px: colours are judged on a copy about this size
    hue_gain: float = 2.0  # a colour axis replaces brightness where it separates ink from paper this much better
    spread_percentile: float = 99.0  # the spread of levels is measured between this and 100 - this
    opaque: int = 250  # alpha at or above which a pixel is opaque
    inked_share: float = 0.5  # with nothing opaque, pixels this share of the highest alpha are the ink
    min_block: int = 2  # px: a nearest-neighbour enlargement's blocks are at least this wide
    same_level: float = 1.0  # grey levels: lines closer than this everywhere repeat one pixel line
    min_edges: int = 6  # block edges, rows and columns together, needed before a grid is believed
    rounding: tuple[float, float] = (0.5, 1.0)  # px a block edge may fall before / after its exact place
    scale_agreement: float = 0.15  # the blocks' scale along rows and columns agrees within this share


@dataclass(frozen=True)
class Polarity:
    """Which side is ink (§ Blocky enlargements, forms' boxes)."""
    frame_depth: float = 0.1  # of the longer side: a form's box line along the border is looked past this far
    uniform_line: float = 0.9  # share of a border line on one side of halfway for it to be all paper or all ink


@dataclass(frozen=True)
class Background:
    """The paper's lighting taken out, and whether any ink is there (§ A light pencil on a photographed page;
    § Transparent ink that is nowhere opaque; § Bold digits: the paper under a marker's strokes)."""
    side: int = 128  # px: lighting, polarity and stroke width are judged on a copy averaged in whole blocks to
    # this to twice this on its longer side (an image up to twice this px, to half its size ...
    coarse_min: int = 64  # px: ... where its shorter side keeps at least this; § A digit's photo judged at half
    # its size)
    ink_height: int = 96  # px: an image whose ink stands taller is shrunk to it (the digit ends 20 px tall, its
    # strokes are evened at most 80 px; § The reader at the ink's working size) ...
    min_stroke: float = 4.0  # px: ... as far as its strokes stay this wide ...
    shrink_below: float = 0.75  # ... where that shrinks it to this share of its size or less
    lighting: int = 4  # lighting varies over 1/this of the longer side or more
    min_opening: int = 3  # coarse px: the narrowest opening
    grain_sigma: float = 1.0  # px: a Gaussian this wide averages a photo's grain away, not a stroke
    min_contrast: float = 32.0  # grey levels ink stands above the paper at least ...
    noise_margin: float = 8.0  # ... and this many noise standard deviations
    faint_contrast: float = 10.0  # fainter ink counts down to this many levels where its edges are a pen's:
    pen_sharpness: float = 0.18  # edge sharpness at least this (share of the detail's range per coarse px); the
    # crop clears the paper around such edges (§ The paper around a digit cleared)
    min_sharpness: float = 0.1  # edges rising more slowly than this are a shadow's or a blur's, not a pen's
    fat_opening: float = 2.5  # stroke widths: the opening for strokes too fat for the lighting's ...
    thin_opening: float = 4.0  # ... and for thinner strokes, at least shadow_share of the lighting's
    shadow_share: float = 0.5
    stroke_smoothing: float = 0.5  # coarse px of smoothing before strokes are measured (chalk's gaps)
    ink_percentile: float = 90.0  # full ink is this percentile of what stands above half the peak
    surface_ink: float = 99.0  # paper under fat strokes: the ink level is this percentile of what stands above ...
    surface_stroke: float = 0.25  # ... the opening, and what stands below this share of that level is paper ...
    surface_edge: float = 0.03  # ... away from the strokes by this share of the shorter side
    surface_min_paper: float = 0.05  # share of the pixels that must be paper for a surface to be fitted
    surface_outliers: float = 3.0  # robust standard deviations beyond which a pixel is left out of the refit


@dataclass(frozen=True)
class Lines:
    """A page's printed rulings and a form's boxes (§ Lined and squared paper; § Blocky enlargements, forms'
    boxes; § Bold digits on 10,000 test images)."""
    span: float = 0.9  # of the image's side that a printed line runs unbroken
    min_rulings: int = 2  # lines in one direction before any goes: one long bar may be a 7's
    box_sides: int = 3  # thin lines in both directions that make a box or a grid
    max_share: float = 0.05  # a printed line is at most this share of its length thick ...
    min_px: int = 2  # ... or this many px
    lone: float = 0.4  # a lone line goes when thinner than this many of the ink's stroke widths
    max_ink_beside: float = 0.5  # share of ink in the rows beside a line above which it is a wide stroke's middle
    paper_margin: float = 2.0  # paper beside a line: below this many times the typical row's brightest run
    soft_edge: float = 0.25  # of a line's brightest: the rows this bright beside it are its soft edge, not ink


@dataclass(frozen=True)
class Crop:
    """Marks found, grouped into digits and cut out; what is not a digit refused (§ Refusing what predict cannot
    answer; § A speck or a dash is not a digit; § A pen running dry, and combs of small boxes)."""
    veil_far: float = 0.25  # the veil is the median of what lies below this share of full ink ...
    veil_tolerance: float = 8.0  # ... taken off beyond this many grey levels
    min_correlation: float = 0.3  # pen strokes are smooth (>= 0.55 on MNIST and photos); noise is near 0
    main_strokes: int = 5  # a digit's ink lies in a few connected pieces ...
    piece_connectivity: int = 4  # ... (4-connected: random specks rarely join up so) ...
    main_share: float = 0.6  # ... holding at least this share of all ink
    mark_connectivity: int = 8  # a mark is 8-connected: a pen's stroke touches itself diagonally
    dust_share: float = 0.01  # a mark with less ink than this share of the largest is dust
    max_marks: int = 500  # separate marks in one image: more is not a digit or a number
    residue_percentile: float = 99.0  # what the background's removal left on the paper: this percentile ...
    residue_margin: float = 1.5  # ... times this; faint stretches run on above it
    clearance: float = 0.01  # of the longer side: paper lies this far from any stroke
    speck_height: float = 0.25  # a group shorter than this share of the tallest ...
    speck_area: float = 0.1  # ... and lighter than this share of the largest is dirt
    merge_overlap: float = 0.5  # marks overlapping by this share of the narrower one's width are one digit
    fragment: float = 0.45  # of the typical height: a group narrower than this ...
    fragment_height: float = 1.5  # ... and shorter than this many times that is a piece of a neighbour
    flat: float = 0.4  # of the typical height: a flatter, wider-than-tall piece is a detached bar
    merge_gap: float = 0.08  # typical heights: a piece joins the nearest group this close
    several_height: float = 0.6  # two groups this tall and ...
    several_area: float = 0.15  # ... this heavy, relative to the largest, are two digits ...
    several_gap: float = 0.15  # ... when apart by this share of their height, or wider than fit.max_aspect
    min_side: float = 6.0  # px of the decoded image: smaller ink is a speck
    max_flatness: float = 5.0  # width / height: a dash
    touching: float = 1.25  # width / typical height beyond which a group holds touching digits (or marks joined)
    join_marks: int = 3  # neighbouring marks also read joined as one digit, at most this many (faded ink)
    digit_aspect: float = 0.75  # a handwritten digit's typical width / height, to count touching digits
    tall_group: float = 1.5  # typical heights: a group shorter than this is sized by its own height when split
    cut_share: int = 3  # a cut may move 1/this of a digit's share of the width from the even split
    own_reach: int = 2  # px: a digit keeps the ink this close to its own mark (soft edges)
    level_reach: float = 1.0  # stroke widths: a number's digit is also cut levelled, each pixel raised by what
    level_floor: float = 0.5  # raises the brightest ink this near it to full, by at most 1 / level_floor (§ A
    # pen running dry: its ink levelled)


@dataclass(frozen=True)
class Strokes:
    """Strokes evened to MNIST's width (§ Any digit; § A marker's width)."""
    mnist: tuple[float, float, float] = MNIST_STROKES  # px in the 20-px box: 5th, 50th, 95th percentile
    working_side: int = 80  # px: strokes are evened on a copy at most this long


@dataclass(frozen=True)
class Fit:
    """The digit placed as MNIST was: longer side in the 20-px box, centre of mass at the centre."""
    max_aspect: float = 1.4  # width / height: 99% of MNIST's digits are narrower; flatter ones are raised


@dataclass(frozen=True)
class Views:
    """More views of a very narrow or flat digit (§ Reading very narrow and flat digits twice; § Reading a flat
    pen digit squeezed)."""
    narrow: float = 0.4  # width / height below which the digit is also read stretched to this
    flat: float = 0.9  # width / height above which a pen's digit is also read squeezed ...
    squeezed: float = 0.5  # ... to this


@dataclass(frozen=True)
class ReaderParams:
    ink: Ink = field(default_factory=Ink)
    decode: Decode = field(default_factory=Decode)
    polarity: Polarity = field(default_factory=Polarity)
    background: Background = field(default_factory=Background)
    lines: Lines = field(default_factory=Lines)
    crop: Crop = field(default_factory=Crop)
    strokes: Strokes = field(default_factory=Strokes)
    fit: Fit = field(default_factory=Fit)
    views: Views = field(default_factory=Views)

    def as_dict(self) -> dict:
        return asdict(self)


PARAMS = ReaderParams()


# Bumped whenever a step's code changes what the model is given: tests/test_reader.py's fingerprint (fixed images
# through the reader, against tests/reader_fingerprint.npz) fails until it is, and the version changes with it.
# FIT_REVISION covers the steps a model trained on the reader's output depends on (strokes and fit: the marker
# reader is trained on digits put through `fit_and_centre`).
STEPS_REVISION = 8
FIT_REVISION = 1


def reader_version(params: ReaderParams = PARAMS) -> str:
    """"r<revision>-<hash of the values>": a model trained on the reader's output (the marker reader) records it
    and is refused by a reader of another version."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(params.as_dict(), sort_keys=True).encode()).hexdigest()
    return f"r{STEPS_REVISION}-{digest[:8]}"


def fit_version(params: ReaderParams = PARAMS) -> str:
    """"f<revision>-<hash>" of the strokes and fit steps and their values: what a model trained on the reader's
    fitted digits (the marker reader) was trained on, and needs."""
    import hashlib
    import json

    part = {"ink": asdict(params.ink), "strokes": asdict(params.strokes), "fit": asdict(params.fit)}
    digest = hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()
    return f"f{FIT_REVISION}-{digest[:8]}"


def reader_stamp(params: ReaderParams = PARAMS) -> dict[str, str]:
    """What model.json records of the reader its model was made with."""
    return {"version": reader_version(params), "fit": fit_version(params)}
