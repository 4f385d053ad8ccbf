"""The try-it page in a real Chromium: an upload, a dropped image, an edited label list and a corpus search.

The server requires an API key, so the page is used as a person would: type the key, then upload a picture.
Its corpus is a small tiny-shapes index built by the real corpus indexer (tests/local_server/page_corpus.py);
a second server holds an index of another model, which the page must refuse, naming both models. The
Chromium driver is test_browser.py's. ``TRY_PAGE_SCREENSHOT=docs/try-page.png`` keeps the screenshot.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from model_code.tiny_shapes.shapes import render
from omnisearch_embed.settings import Settings
from tests.browser import test_browser as shared
from tests.local_server.page_corpus import OTHER_MODEL, build_corpus, other_model_index

browser = shared.browser  # the module's Chromium, as the other browser tests drive it
KEY = "page-browser-key"
EDITED_LABELS = ["red circle", "blue star", "green square"]


@dataclass
class Site:
    url: str
    corpus: Path


@pytest.fixture(scope="module")
def tiny() -> Any:
    from local_server.clip_backend import LocalClipBackend

    return LocalClipBackend("tiny-shapes")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tiny: Any) -> Iterator[Site]:
    from local_server.background import serve_in_thread
    from local_server.page.corpus_index import load_index
    from local_server.server import LocalServer

    corpus = build_corpus(tmp_path_factory.mktemp("corpus"))
    server = LocalServer(
        tiny, Settings(api_key=KEY), local_model=lambda: tiny, workers=4, weaviate=False, index=load_index(corpus)
    )
    with serve_in_thread(server) as url:
        yield Site(url, corpus)


@pytest.fixture(scope="module")
def other_site(tmp_path_factory: pytest.TempPathFactory, tiny: Any) -> Iterator[str]:
    from local_server.background import serve_in_thread
    from local_server.page.corpus_index import load_index
    from local_server.server import LocalServer

    index = load_index(other_model_index(tmp_path_factory.mktemp("other")))
    server = LocalServer(tiny, Settings(), local_model=lambda: tiny, workers=2, index=index)
    with serve_in_thread(server) as url:
        yield url


def until(driver: Any, condition: Any, timeout: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def panel(driver: Any, name: str) -> dict[str, Any]:
    """What a panel shows: its state, its error line, and its rows (labels or hits)."""
    return driver.execute_script(
        """
        const name = arguments[0];
        const section = document.getElementById(name + "-panel");
        const rows = name === "labels"
          ? [...document.querySelectorAll("#label-results li")].map((li) => ({
              label: li.dataset.label, percent: parseFloat(li.querySelector(".value").textContent)}))
          : [...document.querySelectorAll("#hits li")].map((li) => {
              const img = li.querySelector("img");
              const text = li.querySelector(".text");
              return {id: li.dataset.id, kind: li.classList.contains("image") ? "image" : "text",
                      image: img ? {src: img.src, width: img.naturalWidth, complete: img.complete} : null,
                      text: text ? text.textContent : null};
            });
        return {state: section.dataset.state, error: section.querySelector(".error").textContent, rows};
        """,
        name,
    )


def settled(driver: Any, name: str, check: Any) -> Any:
    """Wait until panel ``name`` is done and ``check(rows)`` holds; the panel as it then is."""

    def ready(d: Any) -> Any:
        shown = panel(d, name)
        if shown["state"] == "error":
            raise AssertionError(f"the {name} panel failed: {shown['error']}")
        return shown if shown["state"] == "done" and check(shown["rows"]) else False

    return until(driver, ready)


def picture(path: Path, colour: str, shape: str) -> Path:
    render(colour, shape, "large", random.Random(11)).save(path)  # drawn afresh: not the corpus file
    return path


_DROP = """
const [b64, name, done] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const data = new DataTransfer();
data.items.add(new File([bytes], name, {type: "image/png"}));
const drop = document.getElementById("drop");
drop.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
drop.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
done(true);
"""


def test_upload_edit_the_labels_and_search_the_corpus(browser: Any, site: Site, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    browser.get(f"{site.url}/")
    until(browser, lambda d: d.execute_script("return document.body.dataset.ready") == "true")
    key_field = shared.wait_for(browser, "#api-key")  # the server wants a key: the page asks for it
    key_field.send_keys(KEY)
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    until(browser, lambda d: "corpus.parquet" in d.find_element(By.ID, "index-info").text)
    assert KEY not in browser.page_source and not key_field.is_displayed()

    # an upload: the default labels (colours and shapes) name it, the corpus shows its picture and caption
    browser.find_element(By.ID, "file").send_keys(str(picture(tmp_path / "upload.png", "red", "circle")))
    labels = settled(browser, "labels", lambda rows: len(rows) == 12)["rows"]
    assert {row["label"] for row in labels[:2]} == {"red", "circle"}, labels
    assert [row["percent"] for row in labels] == sorted((row["percent"] for row in labels), reverse=True)
    hits = settled(browser, "search", lambda rows: bool(rows) and rows[0]["id"] == "red-circle.png")["rows"]
    first = hits[0]
    assert first["kind"] == "image" and first["image"]["src"].startswith("blob:") and first["image"]["width"] > 0
    caption = next(hit for hit in hits if hit["kind"] == "text")
    assert caption == {"id": "captions.txt:1", "kind": "text", "image": None, "text": "a photo of a red circle"}
    shot = tmp_path / "try-page.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("TRY_PAGE_SCREENSHOT"):
        shutil.copy(shot, os.environ["TRY_PAGE_SCREENSHOT"])

    # the label list edited: only these labels come back, the right one first
    box = browser.find_element(By.ID, "labels")
    box.clear()
    box.send_keys("\n".join(EDITED_LABELS))
    browser.find_element(By.ID, "classify").click()
    labels = settled(browser, "labels", lambda rows: len(rows) == len(EDITED_LABELS))["rows"]
    assert labels[0]["label"] == "red circle" and {row["label"] for row in labels} == set(EDITED_LABELS)
    assert sum(row["percent"] for row in labels) == pytest.approx(100, abs=0.2)

    # a text query, with the edited labels kept
    field = browser.find_element(By.ID, "text")
    field.send_keys("a blue star")
    browser.find_element(By.ID, "go").click()
    settled(browser, "labels", lambda rows: rows and rows[0]["label"] == "blue star")
    hits = settled(browser, "search", lambda rows: bool(rows) and rows[0]["id"] == "captions.txt:2")["rows"]
    assert next(hit for hit in hits if hit["kind"] == "image")["id"] == "blue-star.png"
    assert shared.loaded_from(browser) == {site.url}, "the page loaded something from elsewhere"


def test_a_dropped_image_is_the_query(browser: Any, site: Site, tmp_path: Path) -> None:
    browser.get(f"{site.url}/")  # the key is still in this tab's sessionStorage
    until(browser, lambda d: d.execute_script("return document.body.dataset.ready") == "true")
    data = picture(tmp_path / "drop.png", "green", "square").read_bytes()
    browser.execute_async_script(_DROP, base64.b64encode(data).decode(), "drop.png")
    hits = settled(browser, "search", lambda rows: bool(rows) and rows[0]["id"] == "green-square.png")["rows"]
    assert hits[0]["image"]["width"] > 0
    assert "drop.png" in browser.execute_script("return document.getElementById('query-status').textContent")


def test_the_page_refuses_an_index_of_another_model(browser: Any, other_site: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{other_site}/")
    error = until(browser, lambda d: d.find_element(By.ID, "search-error").text)
    assert "index_model_mismatch" in error and OTHER_MODEL in error and "tiny-shapes" in error
    browser.find_element(By.ID, "text").send_keys("a red circle")
    browser.find_element(By.ID, "go").click()
    labels = settled(browser, "labels", lambda rows: len(rows) == 12)["rows"]  # the labels still work
    assert {row["label"] for row in labels[:2]} == {"red", "circle"}
    assert panel(browser, "search")["rows"] == []
