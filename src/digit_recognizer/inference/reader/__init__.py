"""The image reader: any image a person hands over -> the 28x28 views of its digit (or of every digit of a
number) that the model reads, in named steps with one set of parameters.

    decode -> polarity -> background -> lines -> crop -> strokes -> fit -> views

    read_digit(src, params=PARAMS, name, trace=None) -> Views        # pipeline.py
    preprocess(src, params=PARAMS, name) -> (28, 28) uint8           # the first view
    read_marks(src, params=PARAMS, name, trace=None) -> [Segment]
    ReaderParams, PARAMS, reader_version()                           # params.py

Each step is a module (decode, polarity, background, lines, crop, fit) built on ops.py (OpenCV filters and
resizing), masks.py (ink, components, stroke widths) and stats.py (samples, medians, percentiles).
"""
from .fit import Views, fit_and_centre
from .params import PARAMS, ReaderParams, reader_version
from .pipeline import STEPS, Segment, Stage, Trace, ink_only, preprocess, read_digit, read_marks

__all__ = ["PARAMS", "STEPS", "ReaderParams", "Segment", "Stage", "Trace", "Views", "fit_and_centre",
           "ink_only", "preprocess", "read_digit", "read_marks", "reader_version"]
