"""The training split widened with other people's hands and with marks that are not digits.

    widened(cfg, train Split, draw=0) -> Split   # the MNIST digits, then other hands' digits, then outliers
    draw_of(cfg, epoch) -> int   # which draw of those extra images epoch `epoch` trains on
    validation_outliers(val Split, n) -> (n, 28, 28) uint8   # drawn from the validation digits, for the refusal
    drawn_ahead(validation_outliers, val) -> () -> the same   # drawn on a thread while the net trains

Every draw comes from the run's seed and its number (and, for validation, a seed of its own), so a resumed run
and every rank of a distributed one see the same images. With `redraw_every`, the extra images are drawn afresh
every so many epochs, so that the net cannot learn a fixed bank of them by heart.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np
import torch

from ..constants import NOT_DIGIT
from ..data.dataset import Split
from .fonts import font_digits
from .hands import edited_mnist, styled_digits
from .outliers import outlier_bank
from .recipes import TrainConfig

TRAIN_DRAWS, VALIDATION_DRAWS = 7_451, 7_457  # seeds of the training and validation draws, with the run's seed
VALIDATION_OUTLIERS = 3_000  # marks that are not digits, to fit the refusal threshold on


def draw_of(cfg: TrainConfig, epoch: int) -> int:
    """The draw of other hands' digits and outliers that (0-based) `epoch` trains on."""
    return epoch // cfg.redraw_every if cfg.redraw_every else 0


def widened(cfg: TrainConfig, tr: Split, draw: int = 0) -> Split:
    """`tr` followed by `cfg.other_hands` times its size in other hands' digits (MNIST's 1s and 7s edited, the
    rest drawn, a share `cfg.fonts` of those from handwriting fonts) and `cfg.outliers` times its size in
    outliers, labelled NOT_DIGIT: draw number `draw`."""
    if not (cfg.other_hands or cfg.outliers):
        return tr
    rng = np.random.default_rng([cfg.seed, TRAIN_DRAWS, *([draw] if draw else [])])  # draw 0: as it always was
    images, labels = tr.images.numpy(), tr.labels.numpy()
    parts, tags = [images], [labels]
    if cfg.other_hands:
        want = int(round(cfg.other_hands * len(tr)))
        edited, edited_labels = edited_mnist(images, labels, rng)
        keep = rng.permutation(len(edited))[:want // 2]  # half the extra digits edited from MNIST's own
        typed = int(round(cfg.fonts * (want - len(keep))))  # the drawn digits written in fonts
        drawn, drawn_labels = styled_digits(want - len(keep) - typed, rng)
        parts += [edited[keep], drawn]
        tags += [edited_labels[keep], drawn_labels]
        if typed:
            fonted, fonted_labels = font_digits(typed, rng)
            parts.append(fonted)
            tags.append(fonted_labels)
    if cfg.outliers:
        n = int(round(cfg.outliers * len(tr)))
        parts.append(outlier_bank(n, rng, images, labels, fonts=cfg.fonts, replace=cfg.fonts_replace))
        tags.append(np.full(n, NOT_DIGIT, np.int64))
    return Split(torch.from_numpy(np.concatenate(parts)), torch.from_numpy(np.concatenate(tags)))


def validation_outliers(va: Split, n: int = VALIDATION_OUTLIERS, seed: int = 0) -> np.ndarray:
    """n outliers drawn from the validation digits with a seed of their own: (n, 28, 28) uint8."""
    rng = np.random.default_rng([seed, VALIDATION_DRAWS])
    return outlier_bank(n, rng, va.images.numpy(), va.labels.numpy())


def drawn_ahead(draw: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """draw(*args) started now on a thread of its own; the returned call waits for its result (or raises its
    error). Drawing validation outliers is ~1.7 s of Python and OpenCV on one core that would otherwise come after
    the last epoch; on a GPU it overlaps training, whose replayed graphs leave the interpreter free. A daemon
    thread: an interrupted run does not wait for it."""
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            out["value"] = draw(*args)
        except BaseException as e:  # handed to the caller, who would have met it drawing in line
            out["error"] = e

    thread = threading.Thread(target=work, name=f"{getattr(draw, '__name__', 'draw')}-ahead", daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]
    return result
