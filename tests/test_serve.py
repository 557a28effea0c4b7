"""HTTP API: predictions for uploads and pixel arrays, and a 4xx JSON error for every kind of bad request."""
from __future__ import annotations

import io
import os
import json

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")  # a GPU machine may lack it
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from digit_recognizer.errors import DigitsError  # noqa: E402
from digit_recognizer.inference.recognizer import Recognizer  # noqa: E402
from digit_recognizer.app.serve import create_app  # noqa: E402


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


def test_health_model_docs(client, recognizer):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["worker"] == os.getpid()
    info = client.get("/api/model").json()
    assert info["parameters"] > 0 and "test_accuracy" in info["metrics"]
    assert info["marker_reader"] is (recognizer.loaded.marker is not None)
    assert client.get("/docs").status_code == 200
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]
    assert "<canvas" in client.get("/").text


def test_predict_one_file_matches_cli_objects(client, recognizer, mnist):
    digit = mnist.test.images[0].numpy()
    r = client.post("/api/predict", files={"file": ("seven.png", png(on_paper(digit)), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"file", "digit", "confidence", "probabilities", "refused", "score"}
    assert body["file"] == "seven.png"
    want = recognizer.predict(on_paper(digit)).to_dict(file="seven.png")
    assert body == json.loads(json.dumps(want))
    assert body["digit"] == int(mnist.test.labels[0])


def test_a_callers_score_threshold_decides_what_is_not_a_digit(client, mnist):
    seven = {"file": ("seven.png", png(on_paper(mnist.test.images[0].numpy())), "image/png")}
    plain = client.post("/api/predict", files=seven).json()
    picky = client.post(f"/api/predict?min_score={plain['score'] + 1}", files=seven).json()
    assert not plain["refused"] and picky["refused"] and picky["reason"].startswith("not a digit (unlike")
    number = client.post(f"/api/read?min_score={plain['score'] + 1}", files=seven).json()
    assert number["number"] == "?" and number["refused"]
    assert number["digits"][0]["reason"].startswith("not a digit (unlike")  # why the "?" is one
    assert client.post("/api/predict?min_score=x", files=seven).status_code == 422


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
    (dict(files={"file": ("scan.pdf", b"%PDF-1.4\n1 0 obj", "application/pdf")}), 415, "a PDF document"),
    (dict(files={"file": ("bomb.png", big_png(), "image/png")}), 413, "too large"),
    (dict(files={"file": ("empty.png", b"", "image/png")}), 400, "empty"),
    (dict(json={"pixels": [[0] * 27] * 28}), 422, "shape"),
    (dict(json={"pixels": [[300] * 28] * 28}), 422, "between 0 and 255"),
    (dict(json={"pixels": [[-0.5] * 28] * 28}), 422, "between 0 and 1"),
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


@pytest.mark.parametrize("body,ctype,status,message", [
    (b"--xyz\r\ngarbage", "multipart/form-data; boundary=xyz", 422, "no file in the multipart field 'file'"),
    (b"garbage", "multipart/form-data", 400, "malformed multipart body"),
])
def test_malformed_multipart(client, body, ctype, status, message):
    r = client.post("/api/predict", content=body, headers={"content-type": ctype})
    assert r.status_code == status and message in r.json()["error"], r.text


def test_read_endpoint(client, mnist):
    from digit_recognizer.testing.synth import compose

    img = compose([mnist.test.images[i].numpy() for i in (1, 2, 3)], np.random.default_rng(3), single=False)
    r = client.post("/api/read", files={"file": ("n.jpg", img, "image/jpeg")})
    assert r.status_code == 200 and r.json()["number"] == "210" and r.json()["file"] == "n.jpg"
    assert client.post("/api/read", files={"file": ("x.txt", b"text", "text/plain")}).status_code == 415


@pytest.mark.smoke
def test_local_server_reports_a_server_that_cannot_start():
    from digit_recognizer.testing.localserver import local_server

    with pytest.raises(DigitsError, match="digits serve exited"):
        with local_server("--max-bytes", "not-a-number"):
            pass


def test_a_digit_drawn_across_the_whole_canvas(client):
    """The drawing page sends its 280x280 canvas: a 7 drawn from edge to edge reads as 7, not as blank."""
    from PIL import ImageDraw

    canvas = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(canvas).line([(0, 6), (273, 6), (96, 279)], fill=0, width=24, joint="curve")
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    res = client.post("/api/predict", files={"file": ("drawing.png", buf.getvalue(), "image/png")})
    assert res.status_code == 200, res.text
    assert res.json()["digit"] == 7 and not res.json()["refused"]


def test_json_pixels_take_the_same_path_as_files(client, mnist):
    """A blank array is refused, not read as "0"; a dark-on-white digit is inverted and read; an array already
    in MNIST's form passes through unchanged (the echoed image equals the input)."""
    r = client.post("/api/predict", json={"pixels": np.full((28, 28), 255).tolist()})
    assert r.status_code == 200 and r.json()["refused"] and "no ink" in r.json()["reason"]
    assert r.json()["digit"] is None and r.json()["probabilities"] == []
    r = client.post("/api/predict", json={"pixels": np.zeros((28, 28)).tolist()})
    assert r.status_code == 200 and r.json()["refused"]
    for i in range(5):
        digit = mnist.test.images[i].numpy()
        r = client.post("/api/predict", json={"pixels": (255 - digit).tolist()})
        assert r.status_code == 200 and r.json()["digit"] == int(mnist.test.labels[i])
        # the usual x / 255: the same digit, as floats between 0 and 1
        r = client.post("/api/predict", json={"pixels": (digit / 255.0).tolist()})
        assert r.status_code == 200 and r.json()["digit"] == int(mnist.test.labels[i])


def test_read_boxes_of_an_exif_rotated_photo(client, mnist):
    """Boxes are in the picture as a viewer shows it, whatever EXIF orientation the file was stored with."""
    from digit_recognizer.testing.presentations import EXIF_ORIENTATION, STORED_AS
    from digit_recognizer.testing.synth import compose

    data = compose([mnist.test.images[i].numpy() for i in (1, 2, 3)], np.random.default_rng(3), single=False)
    upright = Image.open(io.BytesIO(data)).convert("RGB")
    want = client.post("/api/read", files={"file": ("u.png", png(np.asarray(upright)), "image/png")}).json()
    for orientation in (6, 8):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        buf = io.BytesIO()
        upright.transpose(STORED_AS[orientation]).save(buf, format="PNG", exif=exif.tobytes())
        got = client.post("/api/read", files={"file": ("r.png", buf.getvalue(), "image/png")}).json()
        assert got["number"] == want["number"] == "210"
        assert [d["box"] for d in got["digits"]] == [d["box"] for d in want["digits"]]


@pytest.mark.smoke
def test_two_workers_answer():
    """`digits serve --workers 2`: uvicorn's worker processes, each loading the model, answer on one port."""
    import urllib.request

    from digit_recognizer.testing.localserver import local_server

    with local_server("--workers", "2") as url:
        seen = {json.loads(urllib.request.urlopen(url + "/api/health").read())["worker"] for _ in range(20)}
        assert seen and all(isinstance(w, int) for w in seen)
        body = json.dumps({"pixels": np.zeros((28, 28)).tolist()}).encode()
        req = urllib.request.Request(url + "/api/predict", data=body, headers={"content-type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req).read())  # a blank array: refused, by a worker
        assert answer["refused"] and "no ink" in answer["reason"]


def test_a_number_given_to_predict_is_refused_and_read_reads_it(client, mnist):
    from digit_recognizer.testing.synth import compose

    rng = np.random.default_rng(3)
    digits = [mnist.test.images[i].numpy() for i in range(4)]
    number = compose(digits, rng, single=False)
    r = client.post("/api/predict", files={"file": ("2024.png", number, "image/png")})
    assert r.status_code == 200 and r.json()["refused"] and r.json()["digit"] is None
    assert "digits side by side" in r.json()["reason"] and "read it as a number" in r.json()["reason"]
    r = client.post("/api/read", files={"file": ("2024.png", number, "image/png")})
    assert r.status_code == 200 and len(r.json()["digits"]) == 4


def test_trace_shows_every_step_of_predict_and_read(client, mnist):
    from digit_recognizer.inference.reader import STEPS
    from digit_recognizer.testing.synth import compose

    digit = png(np.pad(255 - mnist.test.images[0].numpy(), 30, constant_values=255))
    r = client.post("/api/trace", files={"file": ("d.png", digit, "image/png")})
    body = r.json()
    assert r.status_code == 200 and [s["step"] for s in body["steps"]] == list(STEPS)
    assert body["answer"]["digit"] == int(mnist.test.labels[0]) and body["refused_at"] is None
    assert all(s["png"].startswith("data:image/png;base64,") for s in body["steps"])
    assert all(s["ms"] >= 0 for s in body["steps"]) and sum(s["ms"] for s in body["steps"]) > 0  # each step timed
    number = compose([mnist.test.images[i].numpy() for i in (1, 2)], np.random.default_rng(3), single=False)
    r = client.post("/api/trace?number=true", files={"file": ("n.jpg", number, "image/jpeg")})
    steps = [s["step"] for s in r.json()["steps"]]
    assert steps == list(STEPS[:5]) + list(STEPS[5:]) * 2 and len(r.json()["answer"]["number"]) == 2
    blank = client.post("/api/trace", files={"file": ("b.png", png(np.full((50, 50), 255, np.uint8)), "image/png")})
    assert blank.json()["refused_at"].startswith("background: no ink")
