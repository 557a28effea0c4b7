"""Does `digits import-keras` agree with Keras itself? Compares the imported model's test-set answers with the
probabilities Keras wrote (`benchmarks/keras_tutorial.py DATA_DIR --save cnn_model.h5`, in a TensorFlow venv).

    python benchmarks/keras_import_check.py cnn_model.h5 [--out runs/keras]

Prints the share of the 10,000 test images on which the two pick the same digit, and the largest difference in
probability (ours are Keras' softmax before our calibration: the temperature only sharpens or softens them).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("h5", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from digit_recognizer.data import load_mnist
    from digit_recognizer.inference.engine import logits
    from digit_recognizer.models.keras import load_keras_tutorial
    from digit_recognizer.models.modelfile import load_model
    from digit_recognizer.training.keras_import import import_keras

    keras_probs = np.load(str(args.h5) + ".predictions.npy", allow_pickle=False)  # (10000, 10)
    ds = load_mnist(progress=False)
    out = args.out or Path(tempfile.mkdtemp(prefix="keras-import-"))
    net, source = load_keras_tutorial(args.h5)
    model_json = import_keras(net, source, out, ds.train, command=f"digits import-keras {args.h5.name}")
    net = load_model(model_json).nets[0]
    ours = torch.softmax(logits(net, ds.test.images), 1).numpy()  # fp32, no temperature: Keras' own softmax
    agree = float((ours.argmax(1) == keras_probs.argmax(1)).mean())
    result = {"agreement": agree, "max_abs_probability_difference": float(np.abs(ours - keras_probs).max()),
              "keras_test_accuracy": float((keras_probs.argmax(1) == ds.test.labels.numpy()).mean()),
              "imported_test_accuracy": float((ours.argmax(1) == ds.test.labels.numpy()).mean()),
              "model": str(model_json)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
