"""A real browser against the local server: Swagger UI "Try it out", cross-origin fetch, a form upload, OpenAI JS.

Debian's Chromium and chromedriver (``make browser-deps`` installs them), driven by Selenium; one browser for
the whole module. The API server requires a key and allows the origin of a second local server that serves
the test page, as a web app on its own domain would be; requests reaching the API are recorded, so the tests
can check that preflights came without credentials and asked only for headers we allow. Nothing here may
leave the machine: every resource the pages load must come from 127.0.0.1.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from omnisearch_embed.api.cors import ALLOW_HEADERS
from omnisearch_embed.settings import Settings

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"


def _first(*candidates: str | None) -> str | None:
    return next((c for c in candidates if c and Path(c).is_file()), None)


# Debian's packages (make browser-deps); CHROMIUM / CHROMEDRIVER or a preinstalled Chrome elsewhere (CI images)
CHROMIUM = _first(
    os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("google-chrome")
)
CHROMEDRIVER = _first(
    os.environ.get("CHROMEDRIVER"),
    "/usr/bin/chromedriver",
    shutil.which("chromedriver"),
    os.path.join(os.environ.get("CHROMEWEBDRIVER", "/nonexistent"), "chromedriver"),
)
KEY = "browser-test-key"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev dependency: make venv")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.fail(
        "Chromium or chromedriver is missing: run `make browser-deps` (apt-get install chromium chromium-driver)"
    )


class Recorder:
    """ASGI middleware: every HTTP request's method, path and headers, in arrival order."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            self.requests.append((scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)

    def preflights(self, path: str) -> list[dict[str, str]]:
        return [headers for method, p, headers in self.requests if method == "OPTIONS" and p == path]


@dataclass
class Sites:
    api: str  # the local server, keyed, CORS for `page`'s origin
    page: str  # another local server: the test page, the OpenAI bundle, an image
    recorder: Recorder


def _bundle_openai(out: Path) -> None:
    esbuild = JS_DIR / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():  # make browser-deps does this; here for a plain `pytest` run
        npm = shutil.which("npm") or pytest.fail("npm is missing: the OpenAI JS SDK cannot be installed")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=JS_DIR, check=True, timeout=600)
    subprocess.run(
        [str(esbuild), "openai_entry.js", "--bundle", "--format=iife", "--platform=browser", f"--outfile={out}"],
        cwd=JS_DIR,
        check=True,
        timeout=120,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    from local_server.background import serve_in_thread
    from local_server.clip_backend import LocalClipBackend
    from local_server.server import LocalServer
    from omnisearch_testkit.events import sample_png

    root = tmp_path_factory.mktemp("pages")
    shutil.copy(HERE / "pages" / "app.html", root / "app.html")
    (root / "red.png").write_bytes(sample_png(64))
    _bundle_openai(root / "openai.bundle.js")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    pages = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    page_origin = f"http://127.0.0.1:{pages.server_address[1]}"
    thread = threading.Thread(target=pages.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    tiny = LocalClipBackend("tiny-shapes")
    server = LocalServer(
        tiny, Settings(api_key=KEY, cors_allow_origin=page_origin), local_model=lambda: tiny, workers=4
    )
    recorder = Recorder(server.asgi)
    server.asgi = recorder
    try:
        with serve_in_thread(server) as url:
            yield Sites(url, page_origin, recorder)
    finally:
        pages.shutdown()
        pages.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, css: str, timeout: float = 30) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css)))


def loaded_from(driver: Any) -> set[str]:
    """The origins of everything the page loaded (scripts, styles, images, fetches)."""
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat([...document.scripts].map(s => s.src).filter(Boolean))"
        ".concat([...document.querySelectorAll('link[href]')].map(l => l.href))"
    )
    return {"/".join(url.split("/")[:3]) for url in urls if not url.startswith(("data:", "blob:"))}


def test_swagger_try_it_out_embeds_text_with_the_key(browser: Any, sites: Sites) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{sites.api}/swagger")
    wait_for(browser, "button.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".modal-ux input").send_keys(KEY)
    browser.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper button.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".modal-ux button.btn-done").click()
    operation = browser.find_element(By.XPATH, "//div[contains(@class,'opblock-post')][.//*[@data-path='/embed/text']]")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(browser, ".opblock.is-open .try-out__btn").click()
    body = wait_for(browser, ".opblock.is-open textarea.body-param__text")
    body.clear()
    body.send_keys(json.dumps({"text": "a red circle"}))
    browser.find_element(By.CSS_SELECTOR, ".opblock.is-open button.execute").click()
    status = wait_for(browser, ".opblock.is-open .live-responses-table .response .response-col_status")
    answer = browser.find_element(By.CSS_SELECTOR, ".opblock.is-open .live-responses-table .microlight").text
    assert status.text.strip().startswith("200"), answer
    doc = json.loads(answer)
    assert doc["model"] == "tiny-shapes" and len(doc["embedding"]) == doc["dimension"] > 0
    sent = [h for method, path, h in sites.recorder.requests if (method, path) == ("POST", "/embed/text")]
    assert sent and sent[-1].get("x-api-key") == KEY  # the key came from Swagger's Authorize dialog
    assert loaded_from(browser) == {sites.api}, "Swagger UI loaded something from elsewhere (a CDN?)"


_FETCH = """
const [api, key, done] = arguments;
const call = (headers) => fetch(api + "/embed/text", {
  method: "POST",
  headers: {"content-type": "application/json", ...headers},
  body: JSON.stringify({text: "a red circle"}),
}).then(async (r) => ({status: r.status, body: await r.json()}), (e) => ({error: String(e)}));
Promise.all([call({"x-api-key": key}), call({}), call({"authorization": "Bearer " + key})]).then(done);
"""


def test_cross_origin_fetch_with_and_without_the_key(browser: Any, sites: Sites) -> None:
    browser.get(f"{sites.page}/app.html")
    with_key, without, bearer = browser.execute_async_script(_FETCH, sites.api, KEY)
    assert with_key["status"] == 200 and with_key["body"]["dimension"] > 0, with_key
    assert bearer["status"] == 200, bearer
    # API Gateway's 401 carries the origin, so the page can read it instead of seeing a network error
    assert without == {"status": 401, "body": without["body"]} and without["body"]["error"]["code"] == "unauthorized"
    preflights = sites.recorder.preflights("/embed/text")
    assert preflights, "the browser sent no preflight"
    for headers in preflights:  # browsers never send credentials with a preflight; the server must not want them
        assert "x-api-key" not in headers and "authorization" not in headers
        assert headers["origin"] == sites.page


def test_a_page_from_an_origin_not_allowed_cannot_read_answers(browser: Any, sites: Sites) -> None:
    other = sites.page.replace("127.0.0.1", "localhost")  # another origin: same page, different host name
    browser.get(f"{other}/app.html")
    results = browser.execute_async_script(_FETCH, sites.api, KEY)
    assert all("error" in result for result in results), results


def test_a_form_uploads_an_image_as_multipart(browser: Any, sites: Sites, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from omnisearch_testkit.events import sample_png

    image = tmp_path / "red.png"
    image.write_bytes(sample_png(64))
    browser.get(f"{sites.page}/app.html?api={sites.api}&key={KEY}")
    browser.find_element(By.ID, "file").send_keys(str(image))
    browser.find_element(By.ID, "send").click()
    out = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "out").text)
    result = json.loads(out)
    assert result["status"] == 200, result
    assert result["body"]["model"] == "tiny-shapes" and len(result["body"]["embedding"]) == result["body"]["dimension"]
    posted = [h for method, path, h in sites.recorder.requests if (method, path) == ("POST", "/embed/image")]
    assert posted[-1]["content-type"].startswith("multipart/form-data; boundary=")


_OPENAI = """
const [api, key, done] = arguments;
const client = new OpenAI({baseURL: api + "/v1", apiKey: key, dangerouslyAllowBrowser: true, maxRetries: 0});
client.embeddings.create({model: "tiny-shapes", input: ["a red circle", "a blue star"]})
  .then((r) => done({count: r.data.length, dims: r.data.map((d) => d.embedding.length), model: r.model}),
        (e) => done({error: String(e), status: e.status}));
"""


def test_the_official_openai_js_sdk_works_from_a_page(browser: Any, sites: Sites) -> None:
    browser.get(f"{sites.page}/app.html")
    result = browser.execute_async_script(_OPENAI, sites.api, KEY)
    assert "error" not in result, result
    assert result["count"] == 2 and result["dims"][0] == result["dims"][1] > 0 and result["model"] == "tiny-shapes"
    (preflight, *_) = sites.recorder.preflights("/v1/embeddings")
    asked = {h.strip() for h in preflight["access-control-request-headers"].split(",")}
    assert any(h.startswith("x-stainless-") for h in asked)
    assert asked <= {h.lower() for h in ALLOW_HEADERS}, asked - {h.lower() for h in ALLOW_HEADERS}
