"""ONNX export: dynamic batch; on 2,000 MNIST test images the probabilities within 1e-5 of PyTorch's."""
from __future__ import annotations

import numpy as np

from conftest import run_digits
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.models.modelfile import load_model

PARITY_IMAGES = 2_000  # of MNIST's test digits, the first


def test_onnx_parity_on_mnist_test(mnist, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "model.onnx"
    res = run_digits("export", "--onnx", str(out))
    assert res.returncode == 0, res.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    # Parity holds or fails image by image; all 10,000 took 120 s (2 nets x 5 views, both cascade branches).
    images = mnist.test.images[:PARITY_IMAGES]
    x = images.unsqueeze(1).float().numpy()  # (N, 1, 28, 28) pixels 0..255
    out = np.concatenate([session.run(["logits"], {"pixels": x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    odd = session.run(["logits"], {"pixels": x[:7]})[0]  # another batch size: the batch axis is dynamic
    got = np.exp(out - out.max(1, keepdims=True))
    got /= got.sum(1, keepdims=True)  # softmax: the model's probabilities (an ensemble exports their log)
    want = Recognizer(load_model(), precision="fp32").probabilities(images).numpy()
    assert got.shape == (PARITY_IMAGES, 10) and odd.shape == (7, 10)
    assert (got.argmax(1) == want.argmax(1)).all()
    assert np.abs(got - want).max() <= 1e-5
