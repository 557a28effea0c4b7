"""`digits import-keras`: the tutorial's Keras model file made a digits model, calibrated on the images Keras
held out, so that predict, read, evaluate, report, serve and export use it like any other model."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from typing import Any

from ..data.dataset import Split
from ..models.keras import ARCHITECTURE
from ..models.net import Net
from .finish import seal
from .loop import stderr_log
from .rundir import RunDir

# model.fit(..., validation_split=0.1) holds out the *last* 10% of the training arrays, unshuffled: the last
# 6,000 MNIST training images. The tutorial's own notebook splits with sklearn's train_test_split(test_size=0.1)
# and no seed instead, a random 10% nobody can reconstruct; for its model about 90% of these 6,000 were seen in
# training, so the temperature fitted on them is somewhat optimistic (recorded in the model file).
KERAS_VALIDATION_SPLIT = 0.1


def keras_split(train: Split) -> tuple[Split, Split]:
    """(the images Keras trained on, the images it held out), as Keras' validation_split cuts them."""
    cut = int(len(train) * (1 - KERAS_VALIDATION_SPLIT))
    return Split(train.images[:cut], train.labels[:cut]), Split(train.images[cut:], train.labels[cut:])


def import_keras(net: Net, source: dict[str, Any], out: str | Path, train: Split, *, command: str | None = None,
                 log: Callable[[str], None] = stderr_log) -> Path:
    """Write out/model.{safetensors,json} from the net `models.keras.load_keras_tutorial` read from a Keras
    cnn_model.h5, and that file's provenance; returns the JSON path."""
    tr, va = keras_split(train)
    run = RunDir(out)
    run.create()
    held_out = ("the last 6,000 training images: held out by Keras' validation_split=0.1; a random "
                "train_test_split (the tutorial notebook's) held out others")
    training = {"recipe": "keras-import", "model": ARCHITECTURE, "source": source, "train_size": len(tr),
                "val_size": len(va), "validation": held_out, "command": command}
    return seal(run, net, tr.images, va, training=training, tta=False, metrics={}, log=log)
