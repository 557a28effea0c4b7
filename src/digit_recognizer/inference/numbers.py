"""A whole number: every digit the reader cuts out, read by the model, where the reader had two ways to cut it.

Geometry alone cannot tell a wide flat 0 from two touching digits, nor a 7 whose faded ink broke its bar off from
a 1 beside a dash; the reader (reader.crop) cuts out both and the model's answers choose:
- a group split as touching digits is read whole when the model is surer of it whole than of its least sure part;
- neighbouring marks are read joined when the joined mark is a digit the model does not refuse, and it is
  nearly as sure of it as of the surest mark alone that it does not refuse;
- a digit the model refuses as cut is read levelled (a pen running dry: bright where a stroke starts, faint
  where it ends), and the levelled reading stands where the model does not refuse that. A number read whole
  before is read the same.

    read_number(recognizer, image, name, trace=None) -> Reading
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Refusal
from .answers import Prediction, Reading
from .reader import Segment, Trace, read_marks
from .reader.decode import ImageInput

if TYPE_CHECKING:
    from .recognizer import Recognizer

WHOLE_MARGIN = 0.8  # another cut of the same ink wins above this times its parts' confidence (surer, joined)
Box = tuple[int, int, int, int]


def surer(other: Prediction, parts: list[Prediction]) -> bool:
    """Whether the model is surer of `other`, one reading of the marks `parts` read apart, than of the least sure
    part (a wide flat 0 split in two reads as two unsure halves)."""
    return other.confidence > WHOLE_MARGIN * min(p.confidence for p in parts)


def joined(seg: Segment, preds: list[Prediction], start: int, join_pred: dict[int, Prediction]
           ) -> tuple[int, Segment] | None:
    """(stop, the joined reading) of the marks from `start` on that wins over reading them apart, the surest if
    several: a digit the model does not refuse, and nearly as sure as the surest mark alone that it does not
    refuse (a 1 beside half a faded 0 is surer alone than joined to it; a 7 and its faded bar are not)."""
    best, sure = None, 0.0
    for stop, j in seg.joins:
        p, parts = join_pred[id(j)], preds[start:stop]
        if p.refused or p.confidence <= WHOLE_MARGIN * max(0.0 if q.refused else q.confidence for q in parts):
            continue
        if best is None or p.confidence > sure:
            best, sure = (stop, j), p.confidence
    return best


def as_cut_or_levelled(pred: Prediction, levelled: Prediction | None) -> Prediction:
    """A digit's reading as cut, or levelled where the model refuses it as cut and not levelled."""
    return levelled if pred.refused and levelled is not None and not levelled.refused else pred


def read_number(recognizer: "Recognizer", image: ImageInput, name: str = "image", trace: Trace | None = None
                ) -> Reading:
    """Every digit in the image, left to right, through the same reader steps and model path as predict."""
    try:
        segs = read_marks(image, recognizer.params, name, trace)
    except Refusal as e:
        return Reading((), (), e.reason(name))
    wholes = list({id(s.whole): s.whole for s in segs if s.whole is not None}.values())
    joins = [j for s in segs for _, j in s.joins]
    answers = iter(recognizer.predict_views([s.views for s in segs + wholes + joins]))
    preds = [next(answers) for _ in segs]
    whole_pred = {id(w): next(answers) for w in wholes}
    join_pred = {id(j): next(answers) for j in joins}
    # the digits and joined digits the model refuses as cut, read again levelled (made only for these)
    again = [s for s, p in zip(segs, preds) if p.refused and s.levelled is not None]
    again += [j for j in joins if join_pred[id(j)].refused and j.levelled is not None]
    level_pred = dict(zip(map(id, again), recognizer.predict_views([s.levelled() for s in again])))
    join_pred = {k: as_cut_or_levelled(p, level_pred.get(k)) for k, p in join_pred.items()}
    read_whole = {k for k, w in whole_pred.items()
                  if surer(w, [p for s, p in zip(segs, preds) if id(s.whole) == k])}
    out: list[tuple[Prediction, Box]] = []
    shown: set[int] = set()
    i = 0
    while i < len(segs):
        s, i = segs[i], i + 1
        if id(s.whole) in read_whole:  # the group's first part stands for the whole group
            if id(s.whole) not in shown:
                shown.add(id(s.whole))
                out.append((whole_pred[id(s.whole)], s.whole.box))
        elif (best := joined(s, preds, i - 1, join_pred)) is not None:
            out.append((join_pred[id(best[1])], best[1].box))
            i = best[0]
        else:
            out.append((as_cut_or_levelled(preds[i - 1], level_pred.get(id(s))), s.box))
    return Reading(tuple(p for p, _ in out), tuple(b for _, b in out))
