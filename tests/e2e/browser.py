"""A real browser for the settings page's tests: Debian's chromium, headless, driven through
Debian's chromium-driver by Selenium (which downloads nothing: it is told both paths).

The page is opened as ``scheme://user:password@host/…``: the browser answers the front's
challenge (digest on ``up``, basic on ``serve``) with them, as it would with a user's typed ones,
and keeps them for the page's own requests."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement

from tests.waiting import until

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (390, 844)  # a phone's CSS pixels, emulated as a mobile viewport


class Browser:
    def __init__(self) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--lang=en-US"):  # fmt: skip
            options.add_argument(argument)
        options.accept_insecure_certs = True  # serve's own self-signed certificate
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.driver.set_page_load_timeout(30)

    def close(self) -> None:
        self.driver.quit()

    def open(self, url: str, user: str, password: str) -> None:
        """Open ``url`` signed in as ``user``."""
        parts = urlsplit(url)
        signed = f"{parts.scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}{parts.path}"
        self.driver.get(signed)
        until(lambda: self.run("return document.readyState") == "complete", 30)

    def run(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fetch(self, method: str, path: str, body: str | None = None, content_type: str | None = None) -> int:
        """A request the page's own script could send (same origin, the user's credentials): its status.
        Only for a request the user may make: a refusal is a new challenge, and the browser then
        asks the user for other credentials, and the request waits on that."""
        return int(
            self.driver.execute_async_script(
                """const [method, path, body, type, done] = arguments;
                fetch(new URL(path, location.origin), {method, body, headers: type ? {"Content-Type": type} : {}})
                  .then((answer) => done(answer.status), () => done(-1));""",
                method, path, body, content_type,
            )
        )  # fmt: skip

    def send(self, requests: list[tuple[str, str, str | None, str | None]]) -> None:
        """Requests as ``fetch`` sends them (method, path, body, content type), not waited for:
        their answers are read in the front's log."""
        self.driver.execute_script(
            """for (const [method, path, body, type] of arguments[0]) {
              fetch(new URL(path, location.origin), {method, body, headers: type ? {"Content-Type": type} : {}});
            }""",
            [list(request) for request in requests],
        )

    def by_id(self, ident: str) -> WebElement:
        return self.driver.find_element("id", ident)

    def text(self, ident: str) -> str:
        return self.by_id(ident).text

    def wait_text(self, ident: str, wanted: Callable[[str], bool], timeout: float = 90) -> str:
        """The element's text once ``wanted`` holds for it (the page updates itself; nobody reloads)."""
        until(lambda: wanted(self.text(ident)), timeout)
        return self.text(ident)

    def console_errors(self) -> list[str]:
        get_log = cast(Callable[[str], list[dict[str, Any]]], self.driver.get_log)  # untyped in Selenium
        return [str(entry["message"]) for entry in get_log("browser") if entry["level"] == "SEVERE"]

    def mark(self) -> None:
        """Mark this document: a reload (or a navigation) loses the mark."""
        self.run("window.notReloaded = true")

    def marked(self) -> bool:
        return bool(self.run("return window.notReloaded === true"))

    def screenshot(self, path: Path, size: tuple[int, int], *, phone: bool = False) -> list[str]:
        """The whole page at ``size`` (phone: a mobile viewport of that width), as a PNG in ``path``;
        what sticks out of the viewport sideways at that size (a phone would scroll to see it)."""
        width, height = size
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone},
        )
        try:
            overflows = self._overflows()
            full = self.run("return document.documentElement.scrollHeight")
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True,
                 "clip": {"x": 0, "y": 0, "width": width, "height": full, "scale": 1}},
            )  # fmt: skip
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return overflows

    def _overflows(self) -> list[str]:
        return list(
            self.run("""const width = document.documentElement.clientWidth; const out = [];
            for (const node of document.querySelectorAll("body *")) {
              const box = node.getBoundingClientRect();
              if (box.width && box.right > width + 1) out.push(`${node.tagName}#${node.id} ${Math.round(box.right)}`);
            }
            return out;""")
        )


def keep(shot: Path, directory: Path) -> None:
    """A copy of a screenshot where a person finds it after the run (``var/page/``)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, directory / shot.name)
