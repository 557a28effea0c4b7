"""What a new user meets first: versions and help, exit codes, refusals as answers, the API's shape."""
from __future__ import annotations

import io
import json
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_digits
from digit_recognizer.inference.recognizer import Prediction, Reading, Recognizer


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer.load()


@pytest.fixture(scope="module")
def client(recognizer):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from fastapi.testclient import TestClient

    from digit_recognizer.app.serve import create_app

    return TestClient(create_app(recognizer))


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_a_blank_or_a_number_is_a_refused_answer_not_an_exception(recognizer):
    blank = recognizer.predict(png(np.full((60, 60), 230, np.uint8)))
    assert blank.refused and blank.digit is None and blank.reason.startswith("no ink")
    assert blank.to_dict()["refused"] is True and blank.to_dict()["probabilities"] == []
    page = np.full((80, 200), 235, np.uint8)
    page[20:60, 30:36] = 20  # 1
    page[20:60, 90:96] = 20  # 1
    page[20:60, 150:156] = 20  # 1: "111"
    several = recognizer.predict(png(page))
    assert several.refused and "side by side" in several.reason
    assert not recognizer.read(png(page)).refused


def test_reading_a_blank_page_is_refused_with_its_reason(recognizer):
    r = recognizer.read(png(np.full((60, 200), 230, np.uint8)))
    assert r.refused and r.number == "" and r.reason.startswith("no ink")
    assert r.to_dict()["refused"] is True


def test_a_line_where_every_mark_is_refused_is_not_a_number():
    probs = (0.2, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0)
    letters = Reading(tuple(Prediction(0, 0.2, probs, refused=True) for _ in range(3)), ((0, 0, 1, 1),) * 3)
    assert letters.number == "???" and letters.refused and "not a number" in letters.reason
    mixed = Reading((Prediction(4, 0.99, probs), Prediction(0, 0.2, probs, refused=True)), ((0, 0, 1, 1),) * 2)
    assert mixed.number == "4?" and not mixed.refused
    digits = mixed.to_dict()["digits"]  # the "?" says why it is one; a digit read says nothing more
    assert "reason" not in digits[0] and digits[1]["reason"] == "not a digit (low confidence, 0.20)"
    assert mixed.refusals == ["? 2: not a digit (low confidence, 0.20)"]


def test_a_threshold_given_per_call_judges_the_model_answers_only():
    sure = Prediction(3, 0.97, (0.0,) * 10)
    assert sure.at_threshold(0.99).refused and not sure.at_threshold(0.5).refused
    blank = Prediction.refusal("no ink found")
    assert blank.at_threshold(0.0).refused


@pytest.mark.smoke
def test_version_and_short_help():
    from digit_recognizer import __version__

    res = run_digits("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"digits {__version__}"
    res = run_digits("predict", "-h")
    assert res.returncode == 0 and "--min-confidence" in res.stdout
    res = run_digits("serve", "-h")
    assert "/api/read" in res.stdout and "/api/health" in res.stdout


def test_min_score_sets_what_is_refused_as_not_a_digit(tmp_path, mnist):
    img = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.test.images[0].numpy()).resize((112, 112)).save(img)
    plain = json.loads(run_digits("predict", str(img), "--json").stdout)
    assert not plain["refused"] and plain["score"] > 0
    picky = json.loads(run_digits("predict", str(img), "--json", "--min-score", str(plain["score"] + 1)).stdout)
    assert picky["refused"] and picky["reason"].startswith("not a digit (unlike")


@pytest.mark.parametrize("args, message", [
    (["predict", "x.png", "--min-confidence", "2"], "--min-confidence"),
    (["predict", "x.png", "--min-confidence", "-1"], "--min-confidence"),
    (["read", "x.png", "--min-score", "high"], "--min-score"),
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--max-bytes", "-5"], "--max-bytes"),
    (["serve", "--host", "999.1.1.1"], "999.1.1.1"),
    (["serve", "--workers", "0"], "--workers"),
])
@pytest.mark.smoke
def test_bad_options_are_usage_errors_in_one_line(args, message):
    pytest.importorskip("fastapi", reason="serve's options are checked after its extra")
    res = run_digits(*args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.smoke
def test_a_port_in_use_is_one_line():
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = run_digits("serve", "--port", str(port))
    assert res.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_logs_get_a_progress_line_within_an_epoch(monkeypatch):
    from digit_recognizer.data.dataset import Split
    from digit_recognizer.training import epoch, loop
    from digit_recognizer.training.recipes import make_config

    monkeypatch.setattr(epoch, "PROGRESS_SECONDS", 0.0)
    cfg = make_config("fast", batch_size=16, epochs=1, precision="fp32")
    state = loop.set_up(cfg)
    tr = Split(torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8), torch.arange(64) % 10)
    lines: list[str] = []
    epoch.run_epoch(cfg, state, tr, 0, False, True, log=lines.append)  # stderr is not a terminal under pytest
    assert len(lines) == 4 and lines[0].startswith("epoch 1/1: 1/4 batches (25%), loss ")
    quiet: list[str] = []
    epoch.run_epoch(cfg, state, tr, 0, False, False, log=quiet.append)  # --no-progress
    assert quiet == []


def test_every_http_error_has_one_shape(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    wrong = client.get("/api/predict")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error"}
    for bad in ("abc", "2", "-0.1"):
        r = client.post(f"/api/predict?min_confidence={bad}", json={"pixels": np.zeros((28, 28)).tolist()})
        assert r.status_code == 422 and "min_confidence" in r.json()["error"]


def test_min_confidence_per_request(client, recognizer):
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255  # a 1
    plain = client.post("/api/predict", json={"pixels": digit.tolist()}).json()
    strict = client.post("/api/predict?min_confidence=1", json={"pixels": digit.tolist()}).json()
    lenient = client.post("/api/predict?min_confidence=0", json={"pixels": digit.tolist()}).json()
    assert plain["refused"] == (plain["confidence"] < recognizer.min_confidence)
    assert strict["refused"] == (strict["confidence"] < 1.0) and not lenient["refused"]
    assert strict["digit"] == plain["digit"] == lenient["digit"]


def test_the_page_has_a_favicon(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content


def test_a_folder_of_phone_photos_names_what_pillow_cannot_read(recognizer, tmp_path):
    """A folder's AVIF images are read where Pillow reads them; its HEIC photos are listed, and each says to be
    saved as JPEG, instead of the folder seeming to hold no images."""
    from digit_recognizer.errors import DigitsError
    from digit_recognizer.inference.recognizer import expand_paths
    from PIL import features

    page = np.full((120, 100), 230, np.uint8)
    page[20:100, 45:53] = 20  # a 1
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (tmp_path / "notes.txt").write_text("not listed")
    avif = features.check("avif")
    if avif:
        Image.fromarray(page).convert("RGB").save(tmp_path / "one.avif", quality=90)
    files = expand_paths([tmp_path])
    assert [f.name for f in files] == ["IMG_0001.HEIC"] + (["one.avif"] if avif else [])
    heic, *rest = recognizer.predict_many(files)
    assert isinstance(heic, DigitsError) and "a HEIC/HEIF photo" in str(heic) and "save it as JPEG" in str(heic)
    assert all(isinstance(p, Prediction) and p.digit == 1 and not p.refused for p in rest)
