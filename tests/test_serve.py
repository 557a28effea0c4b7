"""HTTP API: predictions for uploads and pixel arrays, and a 4xx JSON error for every kind of bad request."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.app.serve import create_app


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer.load()


@pytest.fixture(scope="module")
def client(recognizer):
    return TestClient(create_app(recognizer, max_bytes=2_000_000))


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def on_paper(digit: np.ndarray) -> np.ndarray:
    big = np.asarray(Image.fromarray(digit).resize((140, 140)), np.int32)
    page = np.full((260, 200), 235, np.int32)
    page[50:190, 30:170] -= big * 215 // 255
    return page.astype(np.uint8)


def test_health_model_docs(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["parameters"] > 0 and "test_accuracy" in info["metrics"]
    assert client.get("/docs").status_code == 200
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]
    assert "<canvas" in client.get("/").text


def test_predict_one_file_matches_cli_objects(client, recognizer, mnist):
    digit = mnist.test.images[0].numpy()
    r = client.post("/api/predict", files={"file": ("seven.png", png(on_paper(digit)), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"file", "digit", "confidence", "probabilities", "refused"} and body["file"] == "seven.png"
    want = recognizer.predict(on_paper(digit)).to_dict(file="seven.png")
    assert body == json.loads(json.dumps(want))
    assert body["digit"] == int(mnist.test.labels[0])


def test_predict_several_files(client, mnist):
    files = [("file", (f"{i}.png", png(mnist.test.images[i].numpy()), "image/png")) for i in range(3)]
    r = client.post("/api/predict", files=files)
    assert r.status_code == 200 and [x["digit"] for x in r.json()] == mnist.test.labels[:3].tolist()


def test_predict_pixels_and_image_echo(client, mnist):
    pixels = mnist.test.images[1].numpy()
    r = client.post("/api/predict?image=true", json={"pixels": pixels.tolist()})
    assert r.status_code == 200
    assert r.json()["digit"] == int(mnist.test.labels[1]) and r.json()["image"] == pixels.tolist()


def big_png() -> bytes:
    return png(np.zeros((8000, 7000), np.uint8))  # 56 Mpx: a tiny file that would decode huge


@pytest.mark.parametrize("kwargs, status, message", [
    (dict(content=b"x" * 2_100_000, headers={"content-type": "application/octet-stream"}), 413, "limit"),
    (dict(files={"file": ("a.txt", b"hello, not an image", "text/plain")}), 415, "not an image"),
    (dict(files={"file": ("bomb.png", big_png(), "image/png")}), 413, "too large"),
    (dict(files={"file": ("empty.png", b"", "image/png")}), 400, "empty"),
    (dict(files={"file": ("blank.png", png(np.full((50, 50), 255, np.uint8)), "image/png")}), 422, "no ink"),
    (dict(json={"pixels": [[0] * 27] * 28}), 422, "shape"),
    (dict(json={"pixels": [[300] * 28] * 28}), 422, "between 0 and 255"),
    (dict(json={"nothing": 1}), 422, "pixels"),
    (dict(content=b"{not json", headers={"content-type": "application/json"}), 400, "malformed JSON"),
    (dict(content=b"", headers={"content-type": "text/plain"}), 400, "empty request"),
    (dict(content=b"abc", headers={"content-type": "text/plain"}), 415, "unsupported content type"),
    (dict(data={"other": "field"}, files={"x": ("a.png", b"123", "image/png")}), 422, "no file"),
])
def test_bad_requests_get_4xx_json(client, kwargs, status, message):
    r = client.post("/api/predict", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_malformed_multipart(client):
    r = client.post("/api/predict", content=b"--xyz\r\ngarbage",
                    headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert 400 <= r.status_code < 500


def test_read_endpoint(client, mnist):
    from digit_recognizer.testing.synth import compose

    img = compose([mnist.test.images[i].numpy() for i in (1, 2, 3)], np.random.default_rng(3), single=False)
    r = client.post("/api/read", files={"file": ("n.jpg", img, "image/jpeg")})
    assert r.status_code == 200 and r.json()["number"] == "210" and r.json()["file"] == "n.jpg"
    assert client.post("/api/read", files={"file": ("x.txt", b"text", "text/plain")}).status_code == 415


def test_local_server_reports_a_server_that_cannot_start():
    from digit_recognizer.testing.localserver import local_server

    with pytest.raises(DigitsError, match="digits serve exited"):
        with local_server("--max-bytes", "not-a-number"):
            pass
