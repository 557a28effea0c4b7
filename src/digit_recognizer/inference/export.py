"""ONNX export: the network with its built-in normalisation, a dynamic batch dimension, pixels in, logits out."""
from __future__ import annotations

from pathlib import Path

import torch

from ..constants import IMAGE_SIZE
from ..errors import DigitsError
from ..models.modelfile import LoadedModel

OPSET = 17


def export_onnx(loaded: LoadedModel, out: str | Path, device: torch.device | None = None,
                marker_reader: bool = False) -> Path:
    """Write `out` (.onnx): input "pixels" float32 (B, 1, 28, 28) in 0..255 -> output "logits" (B, 10).
    The graph is traced on `device` (default CPU); the file itself is device-free. With `marker_reader`, the
    network exported is the model's marker reader, for the digits whose strokes preprocessing thinned as a fat
    marker's (inference.reader.Views.marker)."""
    if marker_reader:
        if loaded.marker is None:
            raise DigitsError(f"{loaded.path}: this model has no marker reader (see digits attach-marker)")
        loaded = loaded.marker
    if len(loaded.nets) != 1:
        raise DigitsError(f"{loaded.path}: ensembles export one member at a time; pass a member's model file")
    out = Path(out)
    device = device or torch.device("cpu")
    net = loaded.nets[0].eval().to(device)
    example = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE, device=device)
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.onnx.export(net, (example,), str(tmp), input_names=["pixels"], output_names=["logits"],
                          dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                          dynamo=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
