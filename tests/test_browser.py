"""The built book in a real browser: headless Chromium loads the front page, the methods page
(the heaviest math) and one results page, takes screenshots, and checks that every image
loaded and that MathJax typeset the math from the book's local copy (no network).

Build the book first (``python -m memloc.book --profile quick``); the tests skip, saying so,
when the book or Chromium is missing. ``$MEMLOC_BOOK_HTML`` points them at another built
book. Screenshots go to the test's tmp dir, or to ``$MEMLOC_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from memloc.utils import repo_root

pytestmark = pytest.mark.browser

HTML = Path(os.environ.get("MEMLOC_BOOK_HTML") or repo_root() / "book" / "_build" / "html")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    if not CHROMIUM or not CHROMEDRIVER:
        return "Chromium and ChromeDriver are not installed (Debian: chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not (HTML / "index.html").exists():
        return f"no built book at {HTML}: run `python -m memloc.book --profile quick` first"
    return None


@pytest.fixture(scope="module")
def server():
    """The built book over HTTP on 127.0.0.1 (a random free port), as a reader would get it."""
    reason = _missing()
    if reason:
        pytest.skip(reason)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _screenshot_dir(tmp_path: Path) -> Path:
    env = os.environ.get("MEMLOC_SCREENSHOTS")
    out = Path(env) if env else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


def _load(browser, url: str) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    # index.html is a redirect to the first page: wait for a loaded page with the book's
    # <main> (a screenshot during the redirect is blank).
    WebDriverWait(browser, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.find_elements(By.TAG_NAME, "main")
        )
    )
    # Wait for the page's images and, where the page loads it, for MathJax's typesetting.
    browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const images = Array.from(document.images).map(img => img.complete ? Promise.resolve()
            : new Promise(r => { img.onload = r; img.onerror = r; }));
        const math = (window.MathJax && MathJax.startup && MathJax.startup.promise)
            ? MathJax.startup.promise : Promise.resolve();
        Promise.all([...images, math]).then(() => done(true), () => done(false));
        """
    )


def _check_page(browser, server: str, path: str, shot: Path, *, expect_math: bool) -> None:
    url = f"{server}/{path}"
    _load(browser, url)
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000, f"screenshot of {url} looks empty"
    broken = browser.execute_script(
        "return Array.from(document.images)"
        ".filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src);"
    )
    assert broken == [], f"images that did not load on {url}: {broken}"
    text = browser.execute_script("return document.querySelector('main').innerText;")
    assert "$$" not in text, f"raw $$ left in {url}: MathJax did not typeset it"
    if expect_math:
        mathjax = browser.execute_script(
            "return Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s));"
        )
        assert mathjax, f"{url} loads no MathJax"
        assert all(src.startswith(server) for src in mathjax), f"MathJax not local: {mathjax}"
        rendered = browser.execute_script(
            "return document.querySelectorAll('mjx-container').length;"
        )
        assert rendered > 0, f"no mjx-container on {url}: the math was not rendered"
        errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length;")
        assert errors == 0, f"{errors} MathJax errors on {url}"


def _check_reader_page(browser, url: str) -> None:
    """A result page reads like a paper's section: no code unless the reader opens it, no
    parameter cell, and every figure at least as wide as the text column."""
    visible_code = browser.execute_script(
        "return Array.from(document.querySelectorAll('main .cell_input'))"
        ".filter(e => !e.closest('details:not([open])')).length;"
    )
    assert visible_code == 0, f"{visible_code} code cells visible on {url}"
    toggles = browser.execute_script("return document.querySelectorAll('main details').length;")
    assert toggles > 0, f"{url} has no collapsed code to open"
    text = browser.execute_script("return document.querySelector('main').innerText;")
    assert "out_dir =" not in text, f"a parameter cell shows on {url}"
    widths = browser.execute_script(
        """
        const column = document.querySelector('main article') || document.querySelector('main');
        const text = Array.from(column.querySelectorAll('p'))
            .map(p => p.getBoundingClientRect().width).reduce((a, b) => Math.max(a, b), 0);
        const figures = Array.from(column.querySelectorAll('.cell_output img'))
            .map(img => img.getBoundingClientRect().width);
        return [text, figures];
        """
    )
    text_width, figures = widths
    assert figures, f"{url} shows no figure"
    narrow = [w for w in figures if w < 0.95 * text_width]
    assert not narrow, f"figures narrower than the text ({text_width:.0f} px) on {url}: {narrow}"


def test_front_page(server, browser, tmp_path):
    shot = _screenshot_dir(tmp_path) / "front_page.png"
    _check_page(browser, server, "index.html", shot, expect_math=False)
    title = browser.title
    assert "memorization" in title.lower(), title


def test_methods_page_math(server, browser, tmp_path):
    shot = _screenshot_dir(tmp_path) / "methods.png"
    _check_page(browser, server, "methods.html", shot, expect_math=True)
    # The UnitMem fraction is display math: MathJax must have turned it into a block.
    blocks = browser.execute_script(
        "return document.querySelectorAll('mjx-container[display=\"true\"]').length;"
    )
    assert blocks >= 5


def test_results_page(server, browser, tmp_path):
    pages = sorted((HTML / "results").glob("*.html")) if (HTML / "results").exists() else []
    pages = [p for p in pages if p.stem != "claims"]
    if not pages:
        pytest.skip("the built book has no results page yet (no notebook has been executed)")
    page = pages[0]
    shot = _screenshot_dir(tmp_path) / f"results_{page.stem}.png"
    _check_page(browser, server, f"results/{page.name}", shot, expect_math=False)
    n_images = browser.execute_script("return document.images.length;")
    assert n_images > 0, f"{page.name} shows no figure"
    _check_reader_page(browser, f"results/{page.name}")


def test_claims_page(server, browser, tmp_path):
    shot = _screenshot_dir(tmp_path) / "claims.png"
    _check_page(browser, server, "claims.html", shot, expect_math=False)
    rows = browser.execute_script("return document.querySelectorAll('main table tbody tr').length;")
    assert rows >= 1, "the claims table is missing"
