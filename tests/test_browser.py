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
    assert page.locator("#answer").inner_text().strip() == "7"
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


def wait_for(page, key: str) -> str:
    page.wait_for_function(f"document.body.dataset.{key} !== undefined", timeout=10_000)
    return page.evaluate(f"document.body.dataset.{key}")


def test_a_scribble_and_a_number_are_refused_in_digit_mode(page):
    page.click("#mode-digit")
    page.click("#clear")
    grid = [[(0.15 + 0.175 * k, 0.15), (0.15 + 0.175 * k, 0.85)] for k in range(5)]
    grid += [[(0.15, 0.15 + 0.175 * k), (0.85, 0.15 + 0.175 * k)] for k in range(5)]
    draw(page, grid)
    assert wait_for(page, "reason").startswith("not a digit")
    assert page.evaluate("document.body.dataset.error") is None  # a refusal is an answer, not an error
    page.click("#clear")
    draw(page, [[(0.2, 0.25), (0.2, 0.75)], [(0.8, 0.25), (0.8, 0.75)]])  # "11"
    assert "side by side" in wait_for(page, "reason")
    page.click("text=Read it as a number")
    assert wait_for(page, "number") == "11"


def test_number_mode_reads_a_drawn_number_with_boxes(page):
    page.click("#mode-number")
    assert page.evaluate("document.getElementById('pad').width") == 560
    draw(page, [[(0.15, 0.2), (0.15, 0.8)],  # 1
                [(0.4, 0.2), (0.6, 0.2), (0.47, 0.8)]])  # 7
    assert wait_for(page, "number") == "17"
    assert page.locator("#digits span").count() == 2
    boxes_drawn = page.evaluate("""() => { const c = document.getElementById('boxes');
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); }""")
    assert boxes_drawn
    page.screenshot(path=str(ARTIFACTS / "number-mode.png"), full_page=True)
    page.click("#mode-digit")


def test_undo_and_brush(page):
    page.click("#clear")
    page.fill("#brush", "10")
    draw(page, [[(0.5, 0.15), (0.5, 0.85)]])
    assert prediction(page) == "1"
    width = page.evaluate("""() => { const c = document.getElementById('pad');
        const row = c.getContext('2d').getImageData(0, c.height / 2, c.width, 1).data;
        let n = 0; for (let i = 0; i < row.length; i += 4) n += row[i] < 128; return n; }""")
    assert 6 <= width <= 14  # the 10 px brush, not the default 24
    draw(page, [[(0.25, 0.2), (0.75, 0.2)]])  # a bar on top: now a 7-ish shape
    page.wait_for_timeout(500)
    page.click("#undo")
    page.wait_for_timeout(500)
    assert prediction(page) == "1"
    page.keyboard.press("Control+z")
    page.wait_for_function("document.body.dataset.prediction === undefined", timeout=10_000)


def test_examples_and_a_centred_layout(page):
    page.click("text=Try:")  # nothing happens: a label
    page.click("#examples button[data-mode=number]")
    assert wait_for(page, "number") == "2024"
    page.click("#examples button[data-src$='marker-7.jpg']")
    page.wait_for_function("document.body.dataset.prediction === '7'", timeout=10_000)
    page.set_viewport_size({"width": 1600, "height": 900})
    box = page.locator("main").bounding_box()
    assert abs(box["x"] - (1600 - box["x"] - box["width"])) < 20
    page.set_viewport_size({"width": 1000, "height": 800})


def test_api_docs_work_offline(server, page):
    outside: list[str] = []
    pg = page.context.browser.new_page()

    def only_local(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    pg.route("**/*", only_local)
    pg.goto(server)
    pg.click("text=API documentation")
    pg.wait_for_selector("text=Digit in one or more images", timeout=15_000)
    pg.click("text=Whole numbers: every digit")
    pg.click("text=Try it out")
    assert pg.locator("input[type=file]").count() >= 1  # the declared multipart body: a file to upload
    pg.close()
    assert not outside, outside


def test_show_the_steps(page):
    """The page shows what the reader did: one picture and its facts per step, in the order the steps ran."""
    page.click("#clear")
    page.evaluate("delete document.body.dataset.steps")
    page.click("#steps summary")
    draw(page, [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]])
    assert prediction(page) == "7"
    page.wait_for_function("document.body.dataset.steps !== undefined", timeout=10_000)
    names = [t.split(" ")[0] for t in page.locator("#steps-list li strong").all_inner_texts()]
    assert names == ["decode", "polarity", "background", "lines", "crop", "strokes", "fit", "views"]
    assert page.locator("#steps-list li img").count() == 8  # every step's output as a picture
    page.click("#steps summary")  # closed again for the tests that follow
