"""Training recipes as frozen configs, and the one place where a config is built and checked.

Every name and value is checked in `make_config`, before any data loads.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..config import from_dict, to_dict
from ..errors import DigitsError
from ..inference.device import use_bf16
from ..models.net import get_architecture
from .outliers import FONTS_REPLACE
from .rundir import RunDir

OPTIMIZERS = ("sgd", "adamw")
MAX_SLANT = 60.0  # degrees: beyond this a digit lies on its side
SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    recipe: str
    model: str = "fast"
    epochs: int = 2
    batch_size: int = 128
    optimizer: str = "sgd"  # one of OPTIMIZERS
    lr: float = 0.01  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    # Decay BatchNorm scales/shifts and biases too (True), or only conv kernels and weight matrices (False,
    # as nanoGPT and airbench do).
    decay_norm_and_bias: bool = True
    schedule: str = "constant"  # constant | onecycle (linear warm-up, then cosine to 0)
    warmup: float = 0.2  # fraction of all steps spent warming up (onecycle)
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    split_seed: int = 0  # the validation split stays the same across training seeds
    seed: int = 0
    channels_last: bool = True  # NHWC is oneDNN's fast layout for these convolutions on CPU
    precision: str = "auto"  # auto (bf16 autocast where the CPU runs it natively) | fp32 | bf16
    augment_degrees: float = 0.0
    augment_scale: float = 0.0
    augment_shift: float = 0.0  # fraction of the image size
    augment_stroke: float = 0.0  # share of images whose strokes are thickened or thinned by a pixel
    augment_bold: float = 0.0  # share of images with strokes 2 px thicker (a thick pen; small loops close up)
    augment_squeeze: float = 0.0  # half the images narrowed to exp(-squeeze)..1 of their width
    augment_widen: float = 0.0  # a quarter of the images widened to 1..exp(widen) times their width
    augment_marker: float = 0.0  # share of images swapped for the digit as a fat marker draws it and the reader
    # thins it back (training.marker: bays and loops filled in)
    augment_slant: float = 0.0  # degrees: half the images slanted (sheared) by up to this, either way
    # Other people's hands (training.hands): this many times the training split in extra digits, half MNIST's
    # 1s and 7s with a flag or a bar, half drawn in other writers' styles.
    other_hands: float = 0.0
    # The share of those drawn digits, and of the outliers' glyphs, written instead in handwriting fonts
    # (training.fonts: type designers' renderings of real hands). The fonts give letters only; `fonts_replace`
    # says which glyphs give way: "glyphs" (letters, symbols and shapes alike) or "letters" (symbols and shapes
    # keep their share; training.outliers.FONTS_REPLACE).
    fonts: float = 0.0
    fonts_replace: str = "glyphs"
    outliers: float = 0.0  # this many times the training split in marks that are not digits (training.outliers)
    outlier_weight: float = 0.5  # the outliers' loss (to uniform) relative to a digit's (Hendrycks et al.: 0.5)
    # Energy-bounded learning (training.step.OutlierLoss; Liu et al. 2020: 0.1): the weight of the squared hinges
    # that push a digit's logsumexp of the logits above `energy_in` and an outlier's below `energy_out` (0: off).
    outlier_energy: float = 0.0
    energy_in: float = 5.0  # a digit's logsumexp floor: the shipped nets give validation digits a median of 4.3
    energy_out: float = 1.0  # an outlier's logsumexp ceiling: log(10) = 2.3 is where ten equal logits of 0 sit
    redraw_every: int = 0  # epochs between fresh draws of those extra digits and outliers (0: one draw per run)
    marker_pen: bool = False  # the marker's stroke a pen of its own (training.marker.MARKER_PEN), not the digit's
    ema: float = 0.0  # decay of the weight average used as the final model; 0 = off
    tta: bool = False  # the saved model averages 1-pixel-shifted views at prediction time
    # With tta: the saved model answers from the plain view alone where its calibrated confidence reaches this
    # (0 to 1], and averages every shifted view only below it (inference.engine.scores); None: every view always.
    cascade: float | None = None
    # Replay each full batch's whole step as one CUDA graph (training.step): None wherever one can run (one
    # process on a CUDA device, SGD), else eager steps; True: required (an error where it cannot); False: off.
    cuda_graph: bool | None = None
    limit: int = 0  # smoke runs: train on only the first N training images (0 = all)


RECIPES = {
    # The tutorial exactly: SGD 0.01 momentum 0.9, batch 32, 10 epochs, 10% validation.
    "tutorial": TrainConfig("tutorial", model="tutorial", epochs=10, batch_size=32, lr=0.01, momentum=0.9),
    # Chosen on validation accuracy per second of training (AVX512-BF16 CPU, bf16): 2 epochs at batch 64 beat
    # 1 epoch of wider nets and batch 128 at the same time; no augmentation in so short a run.
    "fast": TrainConfig("fast", model="fast", epochs=2, batch_size=64, lr=0.2, nesterov=True,
                        weight_decay=5e-4, schedule="onecycle", warmup=0.2, label_smoothing=0.1),
    "best": TrainConfig("best", model="deep", epochs=18, batch_size=128, optimizer="sgd", lr=0.1, nesterov=True,
                        weight_decay=5e-4, schedule="onecycle", warmup=0.15, label_smoothing=0.1,
                        augment_degrees=10, augment_scale=0.1, augment_shift=0.1,
                        augment_stroke=0.5, augment_bold=0.1, augment_squeeze=0.5, augment_marker=0.2, ema=0.999,
                        tta=True, augment_slant=20.0, other_hands=0.25, outliers=0.5, outlier_weight=1.0,
                        redraw_every=6, fonts=0.75, fonts_replace="letters"),
}
# `best` also learns other people's hands (flagged 1s, crossed 7s, slanted scripts: training.hands) and what is not
# a digit (training.outliers); on the fast recipe, over the validation seed of benchmarks/other_hands.py, that
# took letters refused from 4% to 77% and other hands' numbers read from 52% to 87%. Those extra images drawn
# afresh every 6 epochs, over 48 epochs instead of 36 (seed 1, validation, docs/experiments.md § Other hands:
# 48 epochs): other hands 97.3 -> 99.0%, their numbers 97.3 -> 97.7%, the presentation sets +0.25 points on
# average, clean validation the same (30 errors), letters refused 93.3 -> 92.3%.
# Fonts 0.75 of the drawn digits and of the outliers' letters, outliers 0.5 at weight 1.0: chosen on the fast
# recipe (docs/experiments.md § Font letters in place of drawn letters only). Learning the outliers by their energy
# instead (`outlier_energy`) refused more letters on fitted glyphs but not through the reader, at a cost to other
# hands and broken strokes (docs/experiments.md § What is not a digit learned by its energy).
# The deep net (An et al.'s M3) for 18 epochs instead of the wide net for 48, in about the same CPU time: on
# validation one deep net with shifted views read clean digits as the three-net wide cascade did (26 errors),
# refused 93.7% of letters in unseen fonts instead of 88.3% and 95.0% of other marks instead of 86.0%, and raised
# the 27 presentation sets' mean from 97.11 to 97.75 (docs/experiments.md § One deep net instead of three wide).
# The marker reader: the best recipe on digits drawn only with a fat marker of its own width and thinned as the
# reader thins them, on the wide net. A model given one (`digits attach-marker`; models.modelfile:
# "marker_reader") hands it the digits whose strokes the reader thinned; alone it reads clean MNIST worse than
# `best`. The shipped model has none: its deep nets read those digits themselves. As the wide cascade's marker reader
# was trained:
RECIPES["marker"] = replace(RECIPES["best"], recipe="marker", model="wide", epochs=36, augment_marker=1.0,
                            marker_pen=True, redraw_every=0, augment_slant=30.0, other_hands=0.3, outliers=0.35,
                            outlier_weight=0.5, fonts=0.0, fonts_replace="glyphs")
DEFAULT_RECIPE = "fast"

# Where the best choice differs by device. On a GPU a step of 512 images costs about what a step of 64 does,
# so `fast` takes the wide net at batch 512 for 3 epochs (lr 0.6): 0.89 s of training and 99.32-99.36% test
# on an H200, against 6.5 s and 99.28-99.36% for the CPU's settings there, as reported with the request for GPU
# support (PyTorch 2.11); `benchmarks/gpu.py` measures it again on any GPU.
DEVICE_RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    ("fast", "cuda"): {"model": "wide", "batch_size": 512, "epochs": 3, "lr": 0.6},
}


def given(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides a caller actually set (None: not given)."""
    return {k: v for k, v in overrides.items() if v is not None}


def make_config(recipe: str = DEFAULT_RECIPE, device_type: str = "cpu", **overrides: Any) -> TrainConfig:
    """A recipe, as chosen for the device type, with overrides (None values ignored); unknown names, keys and
    values are errors."""
    if recipe not in RECIPES:
        raise DigitsError(f"unknown recipe '{recipe}' (choose from {', '.join(RECIPES)})")
    merged = {**to_dict(RECIPES[recipe]), **DEVICE_RECIPES.get((recipe, device_type), {}), **given(overrides)}
    return check_config(from_dict(TrainConfig, merged, f"recipe {recipe}"))


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Every name in the config is known and every number in range, or a one-line error."""
    get_architecture(cfg.model)
    use_bf16(cfg.precision)  # rejects an unknown precision
    if cfg.optimizer not in OPTIMIZERS:
        raise DigitsError(f"unknown optimizer '{cfg.optimizer}' (choose from {', '.join(OPTIMIZERS)})")
    if cfg.fonts_replace not in FONTS_REPLACE:
        raise DigitsError(f"unknown fonts_replace '{cfg.fonts_replace}' (choose from {', '.join(FONTS_REPLACE)})")
    if cfg.schedule not in SCHEDULES:
        raise DigitsError(f"unknown schedule '{cfg.schedule}' (choose from {', '.join(SCHEDULES)})")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise DigitsError("epochs and batch size must be at least 1")
    if cfg.limit < 0:
        raise DigitsError("--limit must be 0 (all images) or a positive number of images")
    shares = {"augment_stroke": cfg.augment_stroke, "augment_bold": cfg.augment_bold,
              "augment_marker": cfg.augment_marker, "fonts": cfg.fonts}
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise DigitsError(f"{name} is a share of the images: between 0 and 1, got {share}")
    if cfg.augment_widen < 0 or cfg.augment_squeeze < 0:
        raise DigitsError("augment_widen and augment_squeeze must be 0 (off) or positive")
    if not 0.0 <= cfg.augment_slant <= MAX_SLANT:
        raise DigitsError(f"augment_slant is in degrees: between 0 and {MAX_SLANT:g}, got {cfg.augment_slant}")
    if min(cfg.other_hands, cfg.outliers, cfg.outlier_weight, cfg.outlier_energy, cfg.redraw_every) < 0:
        raise DigitsError("other_hands, outliers, outlier_weight, outlier_energy and redraw_every must be 0 (off) "
                          "or positive")
    if cfg.outliers and not (cfg.outlier_weight or cfg.outlier_energy):
        raise DigitsError("outliers need a loss to learn them by: outlier_weight, outlier_energy or both above 0")
    if cfg.outlier_energy and not cfg.outliers:  # the digits' hinge alone would reshape them for nothing
        raise DigitsError("outlier_energy needs outliers to learn (outliers above 0)")
    if cfg.outlier_energy and cfg.energy_out >= cfg.energy_in:
        raise DigitsError(f"energy_out ({cfg.energy_out}) must be below energy_in ({cfg.energy_in}): the digits' "
                          "logsumexp floor lies above the outliers' ceiling")
    if cfg.cascade is not None and not (0.0 < cfg.cascade <= 1.0 and cfg.tta):
        raise DigitsError("--cascade needs --ensemble 2 or more, or a model that predicts with shifted views "
                          "(--tta), and a confidence above 0 and at most 1")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise DigitsError(f"val_fraction must be between 0 and 1, got {cfg.val_fraction}")
    return cfg


def resume_config(run: RunDir, **overrides: Any) -> TrainConfig:
    """The config `run` was started with; `overrides` (None values ignored) must agree with it, or a one-line
    error names each setting that differs."""
    saved = check_config(from_dict(TrainConfig, run.read_config(), str(run.config)))
    wanted = check_config(from_dict(TrainConfig, {**to_dict(saved), **given(overrides)},
                                    f"{run.path}: --resume"))
    if wanted != saved:
        ds, dw = to_dict(saved), to_dict(wanted)
        raise DigitsError(f"{run.path}: --resume continues the run with its own settings, and these differ: "
                          + "; ".join(f"{k}: {ds[k]!r} -> {dw[k]!r}" for k in ds if ds[k] != dw[k]))
    return saved
