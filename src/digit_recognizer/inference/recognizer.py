"""Recognizer: the Python API and the one path image -> reader -> model -> postprocess for every caller."""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..constants import IMAGE_SIZE, NUM_CLASSES
from ..errors import DigitsError, Refusal
from .device import check_precision, engine, resolve_device, usable_cores
from .engine import EVAL_BATCH, scores
from ..models.modelfile import LoadedModel, load_model
from .answers import Prediction, Reading, postprocess
from .numbers import read_number
from .reader import PARAMS, ReaderParams, Trace, Views, read_digit
from .reader.decode import ImageInput

# A folder's images, by name. HEIC/HEIF, which Pillow alone cannot decode, are listed so that each gets its one-line
# error saying what to do, instead of a folder of phone photos seeming to hold no images.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".avif", ".heic", ".heif"}
DEFAULT_MIN_CONFIDENCE = 0.5  # for models saved without a calibrated threshold
MAX_PREPROCESS_WORKERS = 8


def preprocess_workers() -> int:
    """Threads for decoding and preprocessing: one per core the process may use, at most a few."""
    return max(1, min(MAX_PREPROCESS_WORKERS, usable_cores()))


def check_fitting(marker: LoadedModel, params: ReaderParams) -> None:
    """Refuse a marker reader trained on digits fitted otherwise than this reader fits them (a model file that
    records none predates the record and is taken as it is)."""
    from .reader.params import fit_version

    needed = marker.meta.get("reader", {}).get("fit")
    if needed is not None and needed != fit_version(params):
        raise DigitsError(f"{marker.path}: this marker reader was trained on digits fitted by reader {needed}, "
                          f"not by this reader's {fit_version(params)} (retrain it: digits train --recipe marker)")


class Recognizer:
    """A loaded model (or ensemble). `Recognizer.load()` gives the model shipped with the package."""

    def __init__(self, loaded: LoadedModel, *, tta: bool | None = None, min_confidence: float | None = None,
                 precision: str = "auto", device: str | torch.device | None = "auto",
                 params: ReaderParams = PARAMS, min_score: float | None = None):
        self.loaded = loaded
        self.params = params  # the image reader's parameters (inference.reader.params)
        # Model files are device-free: the weights move to the device here (auto: CUDA, then MPS, then CPU).
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        for net in loaded.nets:
            net.to(self.device)
        # "auto": large batches in int8 or bf16 (inference.engine); or fp32 / bf16 / int8. Checked now, not at
        # the first prediction.
        self.precision = check_precision(precision)
        # Calibrated on the validation split at training time; callers may choose their own trade-off.
        self.min_confidence = float(loaded.meta.get("min_confidence", DEFAULT_MIN_CONFIDENCE)
                                    if min_confidence is None else min_confidence)
        # A model trained on marks that are not digits refuses those by its digit score (engine.scores) below
        # this, fitted like min_confidence; None: a model without one refuses by confidence alone.
        self.min_score: float | None = loaded.meta.get("min_score") if min_score is None else min_score
        # Test-time augmentation is part of a model's description (ensembles use it), not a caller's choice.
        self.tta = bool(loaded.meta.get("tta", False)) if tta is None else tta
        # An ensemble may let its first member answer alone where that member is sure (models.modelfile).
        self.cascade: float | None = loaded.meta.get("cascade")
        self._int8: list[torch.nn.Module] = []  # the members quantized so far, each built on first use
        self._int8_lock = threading.Lock()  # the server predicts from several threads
        # The digits whose strokes the reader thinned as a fat marker's go to the model trained on such digits,
        # which was trained on the reader's fitting and needs the same.
        if loaded.marker is not None:
            check_fitting(loaded.marker, params)
        self.marker = (None if loaded.marker is None else
                       Recognizer(loaded.marker, tta=None, precision=precision, device=self.device, params=params))

    def int8_nets(self, count: int | None = None) -> list[torch.nn.Module]:
        """The first `count` members (all by default) quantized to int8 from their recorded ranges; each is
        built once, when first asked for (a cascade's first member often answers alone)."""
        from .int8 import quantize

        count = len(self.loaded.nets) if count is None else count
        with self._int8_lock:
            while len(self._int8) < count:
                k = len(self._int8)
                self._int8.append(quantize(self.loaded.nets[k], self.loaded.member_meta[k]["int8_ranges"],
                                           str(self.loaded.path)))
            return self._int8[:count]

    def prepare(self) -> "Recognizer":
        """Build now what predicting builds on first use: each member's int8 network, where this model predicts
        in int8 (quantizing and tracing one deep net takes about a quarter of a second, and a cascade's second
        member is otherwise built when the first image its first member is unsure of arrives). A server
        prepares before its first request, so that no request pays for it. Returns self."""
        if self.int8_in_use():
            self.int8_nets()
        if self.marker is not None:
            self.marker.prepare()
        return self

    def int8_offered(self) -> bool:
        """Whether the model's int8 networks are offered to the engine: a model with int8 ranges, on the CPU."""
        return self.loaded.has_int8 and self.device.type == "cpu"

    def int8_in_use(self) -> bool:
        """Whether predictions run the int8 networks (offered, and the engine chooses them at this precision)."""
        return self.int8_offered() and engine(self.precision, 1, True, "cpu") == "int8"

    @classmethod
    def load(cls, path: str | Path | None = None, *, min_confidence: float | None = None,
             precision: str = "auto", device: str | torch.device | None = "auto",
             params: ReaderParams = PARAMS, min_score: float | None = None) -> "Recognizer":
        return cls(load_model(path), min_confidence=min_confidence, precision=precision, device=device,
                   params=params, min_score=min_score)

    @property
    def meta(self) -> dict[str, Any]:
        return self.loaded.meta

    def scores(self, images: torch.Tensor | np.ndarray, marker: torch.Tensor | np.ndarray | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed (N, 28, 28) uint8 images -> (N, 10) probabilities and (N,) digit scores
        (engine.scores). The rows where `marker` (N,) bool is set are a fat marker's digits, read by the marker
        reader where the model has one; their score is NaN (not measured: the marker reader's scale is its own,
        and its refusal is by confidence)."""
        x = torch.as_tensor(images)
        if x.ndim == 2:
            x = x.unsqueeze(0)
        if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DigitsError(f"expected images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(x.shape)}")
        if marker is not None and len(marker) != len(x):
            raise DigitsError(f"expected one marker flag per image ({len(x)}), got {len(marker)}")
        routed = None if marker is None or self.marker is None else torch.as_tensor(marker, dtype=torch.bool)
        if routed is not None and routed.any():
            probs, score = torch.empty(len(x), NUM_CLASSES), torch.full((len(x),), math.nan)
            probs[routed] = self.marker.scores(x[routed])[0].cpu()
            if not routed.all():
                probs[~routed], score[~routed] = (t.cpu() for t in self.scores(x[~routed]))
            return probs.to(self.device), score.to(self.device)
        int8_nets = self.int8_nets if self.int8_offered() else None
        probs, score = scores(self.loaded.nets, x, temperatures=self.loaded.temperatures, tta=self.tta,
                              precision=self.precision, int8_nets=int8_nets, cascade=self.cascade)
        if not torch.isfinite(probs).all():  # weights that overflow: no answer is better than a wrong one
            raise DigitsError(f"{self.loaded.name}: the model gave non-finite probabilities (broken weights)")
        return probs, score

    def probabilities(self, images: torch.Tensor | np.ndarray, marker: torch.Tensor | np.ndarray | None = None
                      ) -> torch.Tensor:
        """`scores`' probabilities alone: (N, 28, 28) uint8 -> (N, 10)."""
        return self.scores(images, marker)[0]

    def predict_arrays(self, images: torch.Tensor | np.ndarray) -> list[Prediction]:
        probs, score = self.scores(images)
        return postprocess(probs, self.min_confidence, score, self.min_score)

    def predict_views(self, views: Sequence[Views]) -> list[Prediction]:
        """One prediction per image from its Views (inference.reader.read_digit), their probabilities and scores
        averaged; every view of every image goes through the model in one batch."""
        if not views:
            return []
        counts = [len(v.images) for v in views]
        marked = [v.marker for v in views]
        marker = np.repeat(marked, counts) if any(marked) else None  # (sum of V,)
        probs, score = self.scores(np.concatenate([v.images for v in views]), marker)  # (sum of V, 10), (sum of V,)
        if max(counts) > 1:  # several views of an image: their mean
            probs = torch.stack([p.mean(0) for p in torch.split(probs, counts)])
            score = torch.stack([s.mean() for s in torch.split(score, counts)])
        return postprocess(probs, self.min_confidence, score, self.min_score)

    def predict(self, image: ImageInput, name: str = "image") -> Prediction:
        """One image: a path, bytes, PIL image or array (any size, any polarity)."""
        return self.predict_with_input(image, name)[0]

    def predict_with_input(self, image: ImageInput, name: str = "image",
                           trace: Trace | None = None) -> tuple[Prediction, np.ndarray]:
        """The prediction and the (28, 28) uint8 image the model saw (the server and page show it; blank for an
        image refused before the model); the reader's steps recorded in `trace` if one is given."""
        try:
            views = read_digit(image, self.params, name, trace)
        except Refusal as e:
            return Prediction.refusal(e.reason(name)), np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        return self.predict_views([views])[0], views.images[0]

    def predict_many(self, images: Sequence[ImageInput]) -> list[Prediction | DigitsError]:
        """One result per image, in order: its Prediction (refused for a blank or a number), or the DigitsError
        that stopped it (a corrupt file), so that one bad image costs only its own answer. [] for no images."""
        return [result for _, result in self.predict_stream(images)]

    def predict_stream(self, images: Iterable[ImageInput], *, batch: int = EVAL_BATCH,
                       workers: int | None = None) -> Iterator[tuple[ImageInput, Prediction | DigitsError]]:
        """(image, its Prediction or DigitsError) for each image, in order, as they are ready: images are decoded
        and preprocessed in a thread pool (Pillow and SciPy release the GIL) and predicted `batch` at a time, so
        a folder of a million files never sits in memory."""
        from concurrent.futures import ThreadPoolExecutor
        from itertools import islice

        def prepared(src: ImageInput) -> Views | Prediction | DigitsError:
            name = str(src) if isinstance(src, (str, Path)) else "image"
            try:
                return read_digit(src, self.params, name)  # a path names itself in its errors
            except Refusal as e:
                return Prediction.refusal(e.reason(name))
            except DigitsError as e:
                return e

        it = iter(images)
        with ThreadPoolExecutor(workers or preprocess_workers()) as pool:
            while chunk := list(islice(it, batch)):
                xs = list(pool.map(prepared, chunk))
                good = [x for x in xs if isinstance(x, Views)]
                preds = iter(self.predict_views(good) if good else [])
                for src, x in zip(chunk, xs):
                    yield src, next(preds) if isinstance(x, Views) else x

    def read(self, image: ImageInput) -> Reading:
        """A whole number: every digit in the image, left to right."""
        return read_number(self, image, str(image) if isinstance(image, (str, Path)) else "image")

    def trace(self, image: ImageInput, number: bool = False) -> tuple[Trace, Prediction | Reading]:
        """What the reader did to one image, step by step (inference.reader.Trace: each step's output and
        facts), and the answer it led to: the prediction, or with `number` the reading of a whole number."""
        name = str(image) if isinstance(image, (str, Path)) else "image"
        trace = Trace()
        if number:
            return trace, read_number(self, image, name, trace)
        return trace, self.predict_with_input(image, name, trace)[0]


def expand_paths(paths: Iterable[str | Path], on_skip: Callable[[Path, str], None] | None = None) -> list[Path]:
    """Files as given, folders expanded (sorted) to the image files inside them. A link to nothing with an
    image's name is kept (reading it says what is wrong); a folder that cannot be listed goes to
    `on_skip(path, why)`."""
    import os

    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        found: list[Path] = []

        def unlisted(e: OSError) -> None:
            if on_skip is not None:
                on_skip(Path(e.filename or p), f"cannot list this folder ({e.strerror})")

        for root, _, names in os.walk(p, onerror=unlisted):
            for n in names:
                f = Path(root) / n
                if f.suffix.lower() in IMAGE_SUFFIXES and (f.is_file() or (f.is_symlink() and not f.exists())):
                    found.append(f)
        out += sorted(found)
    return out
