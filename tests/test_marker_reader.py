"""A model with a marker reader: the digits whose strokes the reader thinned as a fat marker's go to the second
network, everything else to the first; the model file names it, and every bad naming is a one-line error."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import holes, run_digits
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.reader import Views
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.models.modelcopy import attach_marker_reader
from digit_recognizer.models.modelfile import load_model, save_model
from digit_recognizer.models.net import build_model
from digit_recognizer.training.marker import marker_bank, marker_digit
from digit_recognizer.inference.reader import read_digit as preprocess_views
from test_marker import ring


@pytest.fixture()
def pair(tmp_path):
    """A model folder and, elsewhere, a marker reader: two different untrained networks."""
    torch.manual_seed(0)
    save_model(tmp_path / "main" / "model", build_model("fast"))
    torch.manual_seed(1)
    save_model(tmp_path / "reader" / "model", build_model("fast"))
    return tmp_path / "main", tmp_path / "reader"


def test_marker_rows_go_to_the_marker_reader(pair):
    main, reader = pair
    alone = load_model(main)
    attach_marker_reader(main, reader)
    both = Recognizer(load_model(main), precision="fp32", device="cpu")
    plain = Recognizer(alone, precision="fp32", device="cpu")
    marker_only = Recognizer(load_model(reader), precision="fp32", device="cpu")
    x = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    marker = torch.tensor([True, False, True, False, False, True])
    got = both.probabilities(x, marker)
    torch.testing.assert_close(got[marker], marker_only.probabilities(x[marker]))
    torch.testing.assert_close(got[~marker], plain.probabilities(x[~marker]))
    torch.testing.assert_close(both.probabilities(x), plain.probabilities(x))  # no flags: the first network
    assert not torch.allclose(got, plain.probabilities(x))  # the two networks do differ
    with pytest.raises(DigitsError, match="one marker flag per image"):
        both.probabilities(x, marker[:3])
    # Views carry the flag through prediction; all of an image's views go to one network.
    views = [Views(x[:2].numpy(), marker=True), Views(x[2:3].numpy())]
    preds = both.predict_views(views)
    torch.testing.assert_close(torch.tensor(preds[0].probabilities), marker_only.probabilities(x[:2]).mean(0))
    torch.testing.assert_close(torch.tensor(preds[1].probabilities), plain.probabilities(x[2:3])[0])
    # The digit score is the first network's scale: the marker reader's rows have none, and are never refused
    # by it (their refusal is by confidence), even under a threshold every other row falls below.
    _, score = both.scores(x, marker)
    assert torch.isnan(score[marker]).all() and torch.isfinite(score[~marker]).all()
    picky = Recognizer(load_model(main), precision="fp32", device="cpu", min_confidence=0.0, min_score=1e9)
    flagged, plain_row = picky.predict_views(views)
    assert flagged.score is None and not flagged.refused and "score" not in flagged.to_dict()
    assert plain_row.unlike and plain_row.refused


def test_a_fat_markers_image_is_read_by_the_marker_reader(pair):
    main, reader = pair
    attach_marker_reader(main, reader)
    img = Image.new("L", (200, 240), 255)
    ImageDraw.Draw(img).ellipse([20, 20, 180, 220], outline=0, width=75)  # a 0 in a fat marker (6 box px)
    assert preprocess_views(img).marker
    both = Recognizer(load_model(main), precision="fp32", device="cpu")
    marker_only = Recognizer(load_model(reader), precision="fp32", device="cpu")
    assert both.predict(img).probabilities == marker_only.predict(img).probabilities
    pen = Image.new("L", (200, 240), 255)
    ImageDraw.Draw(pen).ellipse([20, 20, 180, 220], outline=0, width=12)  # the same 0 in a pen: the first
    assert not preprocess_views(pen).marker
    plain = Recognizer(load_model(main), precision="fp32", device="cpu")
    plain.marker = None
    assert both.predict(pen).probabilities == plain.predict(pen).probabilities


def test_attaching_writes_the_reader_beside_the_model(pair):
    main, reader = pair
    before = load_model(main).sha256
    attach_marker_reader(main, reader)
    meta = json.loads((main / "model.json").read_text())
    assert meta["marker_reader"] == "model-marker.json"
    assert json.loads((main / "model-marker.json").read_text())["weights"] == "model-marker.safetensors"
    loaded = load_model(main)
    assert loaded.marker is not None and loaded.sha256 != before
    # The copy stands alone: the reader's own folder may go.
    for f in reader.iterdir():
        f.unlink()
    assert load_model(main).marker.sha256 == loaded.marker.sha256


def test_bad_marker_readers_are_one_line_errors(pair, tmp_path):
    main, reader = pair
    attach_marker_reader(main, reader)
    meta = json.loads((main / "model.json").read_text())
    for value, match in [(3, "must be a model file name"), ("../reader/model.json", "outside the model's folder"),
                         ("gone.json", "marker reader 'gone.json' is missing")]:
        (main / "model.json").write_text(json.dumps({**meta, "marker_reader": value}))
        with pytest.raises(DigitsError, match=match):
            load_model(main)
    (main / "model.json").write_text(json.dumps(meta))
    nested = json.loads((main / "model-marker.json").read_text())
    (main / "model-marker.json").write_text(json.dumps({**nested, "marker_reader": "model.json"}))
    with pytest.raises(DigitsError, match="cannot name a marker reader of its own"):
        load_model(main)
    with pytest.raises(DigitsError, match="cannot have a marker reader of its own"):
        attach_marker_reader(reader, main)  # main's own description names a reader


@pytest.mark.smoke
def test_attach_marker_on_the_command_line(pair):
    main, reader = pair
    res = run_digits("attach-marker", str(reader), "--model", str(main))
    assert res.returncode == 0 and "now reads fat markers' digits" in res.stdout, res.stderr
    assert load_model(main).marker is not None
    res = run_digits("attach-marker", str(main / "nothing"), "--model", str(main))
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("error:"), res.stderr


def test_a_pen_of_its_own_is_as_wide_whatever_the_digits_stroke():
    """With `pen`, the marker's width is absolute: a fat pen closes a thin ring's hole; a pen no wider than the
    digit's stroke leaves the digit as it was drawn."""
    assert holes(marker_digit(ring(2), 1.0, pen=6.0)) == 0  # 15 px: more than the ring's 10 px hole
    assert holes(marker_digit(ring(3), 1.0, pen=1.0)) == 1
    digits = np.stack([ring(2), ring(3)])
    assert not np.array_equal(marker_bank(digits, 0, pen=True), marker_bank(digits, 0))


@pytest.mark.smoke
def test_the_marker_reader_exports_to_onnx_on_its_own(pair, tmp_path):
    import onnxruntime as ort

    from digit_recognizer.inference.engine import logits

    main, reader = pair
    res = run_digits("export", "--onnx", str(tmp_path / "m.onnx"), "--model", str(main), "--marker-reader")
    assert res.returncode == 1 and "has no marker reader" in res.stderr, res.stderr
    attach_marker_reader(main, reader)
    res = run_digits("export", "--onnx", str(tmp_path / "m.onnx"), "--model", str(main), "--marker-reader")
    assert res.returncode == 0, res.stderr
    x = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"pixels": x.unsqueeze(1).float().numpy()})[0]
    np.testing.assert_allclose(got, logits(load_model(reader).nets[0], x).numpy(), atol=1e-4)


def test_an_ensemble_can_be_the_marker_reader(pair, tmp_path):
    main, reader = pair
    ens = tmp_path / "ens"
    for k in range(2):
        torch.manual_seed(10 + k)
        save_model(ens / f"member-{k}" / "model", build_model("fast"))
    members = [f"member-{k}/model.json" for k in range(2)]
    (ens / "model.json").write_text(json.dumps({"format": "digits-model", "format_version": 1, "members": members,
                                                "tta": True}))
    want = Recognizer(load_model(ens), precision="fp32", device="cpu")
    attach_marker_reader(main, ens)
    for f in sorted(ens.rglob("*"), reverse=True):  # the copy stands alone
        f.unlink() if f.is_file() else f.rmdir()
    both = Recognizer(load_model(main), precision="fp32", device="cpu")
    assert len(both.loaded.marker.nets) == 2 and both.marker.tta
    x = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(both.probabilities(x, torch.ones(3, dtype=torch.bool)), want.probabilities(x))
