"""The drawing page in a real browser: Debian's Chromium, driven by Playwright, against `digits serve`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digit_recognizer.testing.localserver import local_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server():
    with local_server() as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (scripts/setup.sh does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1000, "height": 800})
        pg.goto(server)
        yield pg
        browser.close()


def draw(page, strokes):
    """strokes: lists of (x, y) in 0..1 of the canvas."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


def prediction(page) -> str:
    page.wait_for_function("document.body.dataset.prediction !== undefined", timeout=10_000)
    return page.evaluate("document.body.dataset.prediction")


def test_draw_a_seven_then_clear(page):
    draw(page, [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]])
    assert prediction(page) == "7"
    assert page.locator("#digit").inner_text().strip() == "7"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "drawing-page.png"), full_page=True)
    page.click("#clear")
    assert page.evaluate("document.body.dataset.prediction") is None
    blank = page.evaluate("""() => { const c = document.getElementById('pad');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d.every(v => v === 255); }""")
    assert blank


def test_draw_a_one(page):
    page.click("#clear")
    draw(page, [[(0.5, 0.15), (0.5, 0.85)]])
    assert prediction(page) == "1"


def test_upload_a_photo(page, mnist, tmp_path):
    page.click("#clear")
    digit = mnist.test.images[2].numpy()  # a 1 in MNIST's test set
    big = np.asarray(Image.fromarray(digit).resize((200, 200)), np.int32)
    photo = np.full((320, 260), 225, np.int32)
    photo[60:260, 30:230] -= big * 200 // 255
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo.astype(np.uint8)).save(path, quality=85)
    page.set_input_files("#file", str(path))
    assert prediction(page) == str(int(mnist.test.labels[2]))
    page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)


def test_draw_across_the_whole_canvas(page):
    """A 0 drawn to the canvas' edges (the ink touches all four sides) reads as 0."""
    page.click("#clear")
    ring = [(0.5 + 0.49 * np.cos(t), 0.5 + 0.49 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    draw(page, [ring])
    assert prediction(page) == "0"
