"""`facesketch serve` in a real headless browser: Debian's Chromium driven by Playwright.

Skips when `chromium` is not on PATH or playwright is not installed (no browser is downloaded).
With FACESKETCH_SCREENSHOT set, writes docs/app_screenshot.png after a successful sketch.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("no `chromium` on PATH (Debian: apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "app_screenshot.png"
WAIT_MS = 60_000  # a first sketch loads the model; a busy CI machine is slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url():
    from facesketch.app import build_app, launch
    demo = build_app()
    port = free_port()
    launch(demo, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, Path]:
    from skimage.data import astronaut
    d = tmp_path_factory.mktemp("uploads")
    Image.fromarray(astronaut()).save(d / "astronaut.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    return {p.name: p for p in d.iterdir()}


def make_sketch(page, path: Path) -> None:
    page.locator("#photo-in input[type=file]").set_input_files(str(path))
    page.locator("#photo-go").click()


def status(page):
    return page.locator("#photo2sketch-status")


def save_screenshot(page) -> None:
    """A 1200x800 PNG, quantised to 256 colours when that is what keeps it under ~300 KB."""
    shot = Image.open(io.BytesIO(page.screenshot()))
    buf = io.BytesIO()
    shot.save(buf, format="PNG", optimize=True)
    if buf.tell() > 300_000:
        buf = io.BytesIO()
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    SCREENSHOT.write_bytes(buf.getvalue())


def test_a_photo_becomes_a_sketch_in_the_page(page, uploads):
    make_sketch(page, uploads["astronaut.png"])
    sync_api.expect(status(page)).to_contain_text("Sketch of astronaut.png by fsnet (shipped)")
    src = page.locator("#photo2sketch-out img").get_attribute("src")
    sketch = Image.open(io.BytesIO(page.request.get(src).body()))
    assert sketch.size == (200, 250)
    assert np.asarray(sketch.convert("L")).std() > 10  # a drawing, not a flat field
    if os.environ.get("FACESKETCH_SCREENSHOT"):
        save_screenshot(page)


def test_a_corrupt_upload_is_a_message_and_the_server_goes_on(page, url, uploads):
    make_sketch(page, uploads["corrupt.png"])
    sync_api.expect(status(page)).to_contain_text("Could not do it. corrupt.png: not a picture this app can read")
    sync_api.expect(page.locator("#photo2sketch-out img")).to_have_count(0)  # the old sketch is cleared
    assert page.request.get(url).ok
    make_sketch(page, uploads["astronaut.png"])
    sync_api.expect(status(page)).to_contain_text("Sketch of astronaut.png")


def test_identify_says_how_to_start_it(page):
    page.get_by_role("tab", name="Identify").click()
    sync_api.expect(page.locator("#identify-off")).to_contain_text("facesketch serve --gallery DIR")
