"""ONNX export: the network with its built-in normalisation, a dynamic batch dimension, pixels in, logits out."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..constants import IMAGE_SIZE
from ..errors import DigitsError
from ..models.modelfile import LoadedModel
from .engine import tta_views

OPSET = 17


def export_onnx(loaded: LoadedModel, out: str | Path, device: torch.device | None = None,
                marker_reader: bool = False) -> Path:
    """Write `out` (.onnx): input "pixels" float32 (B, 1, 28, 28) in 0..255 -> output "logits" (B, 10).
    For one network without shifted views they are its logits; for an ensemble, or a model that averages
    shifted views, the log of the probabilities the model answers with (calibrated, averaged, cascaded as
    `engine.probabilities` does), so that softmax gives those probabilities in either case.
    The graph is traced on `device` (default CPU); the file itself is device-free. With `marker_reader`, the
    network exported is the model's marker reader, for the digits whose strokes preprocessing thinned as a fat
    marker's (inference.reader.Views.marker)."""
    if marker_reader:
        if loaded.marker is None:
            raise DigitsError(f"{loaded.path}: this model has no marker reader (see digits attach-marker)")
        loaded = loaded.marker
    out = Path(out)
    device = device or torch.device("cpu")
    net = exported_network(loaded).eval().to(device)
    example = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE, device=device)
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # the shifted views' slices are not folded to constants: nothing to fix
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
            torch.onnx.export(net, (example,), str(tmp), input_names=["pixels"], output_names=["logits"],
                              dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                              dynamo=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


class Averaged(torch.nn.Module):
    """An ensemble (or one network with shifted views) as one graph: (B, 1, 28, 28) pixels -> (B, 10) log
    probabilities. Where a cascade applies, both branches are computed and the first member's kept where it is
    sure: the same answer as `engine.probabilities`, without a branch on the data."""

    def __init__(self, loaded: LoadedModel):
        super().__init__()
        self.nets = torch.nn.ModuleList(loaded.nets)
        self.temperatures = [float(t) for t in loaded.temperatures]
        self.tta = bool(loaded.meta.get("tta", False))
        self.cascade = loaded.meta.get("cascade")

    def calibrated(self, net: torch.nn.Module, t: float, x: torch.Tensor, tta: bool) -> torch.Tensor:
        views = tta_views(x, 1) if tta else [x]
        return torch.stack([torch.softmax(net(v) / t, dim=1) for v in views]).mean(0)  # (B, 10)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([self.calibrated(net, t, pixels, self.tta)
                             for net, t in zip(self.nets, self.temperatures)]).mean(0)  # (B, 10)
        if self.cascade is not None:
            first = self.calibrated(self.nets[0], self.temperatures[0], pixels, False)
            probs = torch.where(first.amax(1, keepdim=True) >= self.cascade, first, probs)
        return torch.log(probs)


def exported_network(loaded: LoadedModel) -> torch.nn.Module:
    """The module an ONNX file holds: the network itself, or the averaged graph (see `Averaged`)."""
    if len(loaded.nets) == 1 and not loaded.meta.get("tta", False):
        return loaded.nets[0]
    return Averaged(loaded)
