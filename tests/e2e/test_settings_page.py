"""The settings page in a real browser (Debian's chromium, headless), against ``up``'s real Apache
front with digest credentials and against ``serve`` with basic ones over HTTPS: the whole TLS
lifecycle and the settings done from the page, a viewer who can change nothing, a hostile
certificate subject shown as text, and screenshots at desktop and phone width."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from acap_http import config
from tests import pki
from tests.e2e import browser
from tests.e2e.browser import DESKTOP, PHONE, Browser
from tests.e2e.front import GROUP, PREFIX, Front, docker
from tests.e2e.served import Served
from tests.waiting import until

FILES = ("ca.pem", "server-cert.pem", "server-key.pem")
SCREENSHOTS = config.CHECKOUT_DIR / "var" / "page"  # where a person finds the run's screenshots
HOSTILE = "<script>pwned=1</script><img src=x onerror=pwned=2>"  # a common name has 64 characters at most


def write_set(directory: Path, authority: pki.Authority, host: str = "127.0.0.1") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in authority.server_set(host).by_name().items():
        (directory / name).write_bytes(data)
    authority.client_files(directory / "client")
    return directory


def reachable_dir(e2e_root: Path) -> Path:
    """A directory the app's unprivileged user may enter (pytest's own temp dirs are root's alone)."""
    base = Path(tempfile.mkdtemp(dir=e2e_root))
    base.chmod(0o755)
    return base


@pytest.fixture(scope="module")
def up(e2e_root: Path) -> Iterator[Front]:
    """``up`` as a newcomer starts it: the default settings (TLS on TCP), no files yet."""
    base = reachable_dir(e2e_root)
    running = Front(app_dir=base / "app", log_path=base / "up.log")
    running.start()
    yield running
    assert running.stop() == 0, running.app_log()


@pytest.fixture
def chromium() -> Iterator[Browser]:
    opened = Browser()
    yield opened
    opened.close()


def page_of(front: Front) -> str:
    return front.url + PREFIX


def starting(*beginnings: str) -> Callable[[str], bool]:
    return lambda text: text.startswith(beginnings)


def status_since(chromium: Browser) -> str:
    return str(chromium.run("return document.querySelector('#status-since time').getAttribute('datetime')"))


def listed(front: Front, name: str) -> str:
    return front.curl(path=f"/axis-cgi/param.cgi?action=list&group={GROUP}.{name}").body.strip()


def test_an_admin_uploads_each_file_through_its_input_and_status_turns_running(
    make_front: Callable[..., Front], chromium: Browser, tmp_path: Path
) -> None:
    """A newcomer's ``up`` (default settings, no files): the page loads without a console error;
    each file chosen in its own input and uploaded turns Status to 0 RUNNING live (no reload), and
    docker reaches dockerd with the set's client."""
    up = make_front(settings=None, extra_args=("--docker-address", "127.0.0.3"))  # the module's up has 127.0.0.1
    up.start()
    files = write_set(tmp_path / "set", pki.Authority("page CA"), "127.0.0.3")
    chromium.open(page_of(up), "admin", up.password or "")
    chromium.driver.get(up.url + "/")  # the site's root sends a signed-in browser to the page
    assert chromium.driver.current_url == up.url + PREFIX
    assert chromium.wait_text("status-value", lambda text: text.startswith("3 TLS CERT MISSING"))
    chromium.mark()
    for name in FILES:
        chromium.by_id(f"upload-{name}").send_keys(str(files / name))
        chromium.driver.find_element("css selector", f'form.upload[data-file="{name}"] button[type=submit]').click()
        said = chromium.wait_text("tls-result", starting(f"{name} stored", f"{name} not stored"), 30)
        assert said.startswith(f"{name} stored"), said
    assert chromium.wait_text("status-value", lambda text: text == "0 RUNNING") == "0 RUNNING"
    assert chromium.marked(), "the page was reloaded"
    assert "dockerd would start with these files." in chromium.text("tls-overview")
    assert "page CA" in chromium.text("file-ca.pem")
    assert chromium.wait_text("dockerd-facts", lambda text: "Containers running" in text)
    assert up.status() == "0 RUNNING"
    done = docker("version", "--format", "{{.Server.Version}}", host="tcp://127.0.0.3:2376",
                  config=tmp_path / "cfg", certs=files / "client")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert chromium.console_errors() == []
    for size, name, phone in ((DESKTOP, "page-desktop.png", False), (PHONE, "page-phone.png", True)):
        overflows = chromium.screenshot(tmp_path / name, size, phone=phone)
        assert overflows == [], f"sticks out sideways at {size}: {overflows}"
        assert (tmp_path / name).stat().st_size > 10_000
        browser.keep(tmp_path / name, SCREENSHOTS)


def test_usetls_off_and_on_through_the_form(up: Front, chromium: Browser, tmp_path: Path) -> None:
    """The UseTLS switch saved from the form (by mouse, then by keyboard alone) changes what
    param.cgi lists, and Status follows on the page by itself: dockerd restarts without TLS, then
    with it."""
    files = write_set(tmp_path / "set", pki.Authority("switch CA"))
    up.update(UseTLS="yes", TCPSocket="yes")
    chromium.open(page_of(up), "admin", up.password or "")
    mark = up.mark()
    chromium.by_id("set-files").send_keys("\n".join(str(files / name) for name in FILES))
    chromium.wait_text("tls-result", lambda text: text.startswith("The TLS set stored"), 30)
    up.wait_status("0 RUNNING", since=mark)  # the set's restart is over: the next is the switch's
    chromium.mark()
    for wanted in ("no", "yes"):
        mark, since = up.mark(), status_since(chromium)
        switch = chromium.by_id("setting-UseTLS")
        assert switch.is_selected() == (wanted == "no")
        save = chromium.driver.find_element("css selector", "#settings button[type=submit]")
        if wanted == "no":
            switch.click()
            save.click()
        else:  # by keyboard alone: Space on the switch, Enter on Save
            switch.send_keys(Keys.SPACE)
            save.send_keys(Keys.ENTER)
        said = chromium.wait_text("settings-result", lambda text: text.startswith(("Saved", "Not saved")), 30)
        assert said.startswith(f"Saved UseTLS={wanted}"), said
        assert listed(up, "UseTLS") == f"{GROUP}.UseTLS={wanted}"
        up.wait_log("Parameters changed: Status=1 DOCKERD STOPPED", since=mark, timeout=60)

        # Status went to 1 and back: the page shows 0 again, since a time after the save.
        def shown_again(before: str = since) -> bool:
            return status_since(chromium) != before and chromium.text("status-value") == "0 RUNNING"

        until(shown_again, 90)
        assert up.status() == "0 RUNNING"
        assert "UseTLS changed" in chromium.text("dockerd-facts")
    assert chromium.marked(), "the page was reloaded"
    assert chromium.console_errors() == []


def test_a_viewer_sees_everything_and_can_change_nothing(up: Front, chromium: Browser, tmp_path: Path) -> None:
    """A viewer's page shows Status, settings, the files and dockerd, with every control disabled;
    a request forced from the page is refused, and nothing changes."""
    files = write_set(tmp_path / "set", pki.Authority("viewer CA"))
    mark = up.mark()
    for name in FILES:
        assert up.upload(name, files / name).status == 204
    up.wait_status("0 RUNNING", since=mark)
    chromium.open(page_of(up), "viewer", up.viewer_password)
    assert "you may look, not change" in chromium.text("user")
    assert chromium.text("status-value")
    assert chromium.by_id("setting-UseTLS").is_displayed()
    assert "viewer CA" in chromium.text("file-ca.pem")
    assert "Public key SHA-256" in chromium.text("file-server-key.pem")
    controls = chromium.driver.find_elements("css selector", "main input, main select, main button, main textarea")
    assert controls and [c.get_attribute("id") or c.text for c in controls if c.is_enabled()] == []
    assert chromium.driver.find_elements("id", "daemon-json") == []  # it may hold a proxy's password
    assert chromium.fetch("GET", PREFIX + "state") == 200
    before, mark = (listed(up, "UseTLS"), listed(up, "IPCSocket")), up.mark()
    forced = [
        ("PATCH", "/config/rest/param/v2beta/dockerdwrapper", '{"data": {"UseTLS": "no"}}', "application/json"),
        ("POST", "/axis-cgi/param.cgi?action=update&root.dockerdwrapper.IPCSocket=yes", None, None),
        ("DELETE", PREFIX + "ca.pem", None, None),
        ("GET", PREFIX + "daemon.json", None, None),
    ]
    for request in forced:
        # A refusal is a challenge for other credentials: the browser forgets the viewer's, asks the
        # user, and holds the page's next requests meanwhile. The page opened anew drops the question.
        chromium.open(page_of(up), "viewer", up.viewer_password)
        chromium.send([request])
        up.wait_log(f'viewer "{request[0]} {request[1]} HTTP/1.1" 401', since=mark)  # Apache refused it
    assert (listed(up, "UseTLS"), listed(up, "IPCSocket")) == before
    assert (up.localdata / "ca.pem").read_bytes() == (files / "ca.pem").read_bytes()


def test_a_certificate_subject_with_a_script_is_shown_as_text(up: Front, chromium: Browser, tmp_path: Path) -> None:
    """A CA whose name is markup shows as that text in the TLS section, live and after a reload; no
    script of it runs, no element of it is made."""
    authority = pki.Authority(HOSTILE)
    subject = authority.cert.subject.rfc4514_string()  # CN=\<script\>pwned=1…: RFC 4514 escapes, HTML's are the page's
    assert "<script>" in subject.replace("\\", "")
    files = write_set(tmp_path / "set", authority)
    chromium.open(page_of(up), "admin", up.password or "")
    mark = up.mark()
    chromium.by_id("set-files").send_keys("\n".join(str(files / name) for name in FILES))
    chromium.wait_text("file-ca.pem", lambda text: subject in text, 30)  # rendered by the page's script
    up.wait_status("0 RUNNING", since=mark)
    chromium.driver.refresh()  # rendered by the server
    assert subject in chromium.wait_text("file-ca.pem", lambda text: subject in text, 30)
    assert chromium.run("return window.pwned") is None
    assert chromium.run("return document.querySelectorAll('main script, main img').length") == 0
    assert chromium.console_errors() == []


def test_the_page_on_serve_over_https(e2e_root: Path, tmp_path: Path, chromium: Browser) -> None:
    """serve: the root sends the browser to the page, which loads without a console error over
    HTTPS with basic credentials, and a set chosen at once in the set's picker brings Status 0."""
    # dockerd's port on another address than the module's up, which runs meanwhile.
    served = Served(reachable_dir(e2e_root), ("--docker-address", "127.0.0.2"))
    served.start()
    try:
        served.notes_until("READY=1")
        files = write_set(tmp_path / "set", pki.Authority("serve CA"))
        chromium.open(served.url + PREFIX, "admin", served.passwords["admin"])
        chromium.driver.get(served.url + "/")
        assert chromium.driver.current_url == served.url + PREFIX
        chromium.wait_text("status-value", lambda text: text.startswith("3 TLS CERT MISSING"))
        chromium.by_id("set-files").send_keys("\n".join(str(files / name) for name in FILES))
        said = chromium.wait_text("tls-result", lambda text: "stored" in text, 30)
        assert said.startswith("The TLS set stored"), said
        assert chromium.wait_text("status-value", lambda text: text == "0 RUNNING") == "0 RUNNING"
        assert served.status() == "0 RUNNING"
        assert chromium.console_errors() == []
    finally:
        assert served.process is not None
        served.process.terminate()
        served.process.wait(90)
        served.notify.close()


def test_daemon_json_and_the_applications_stop_and_start_from_the_page(up: Front, chromium: Browser) -> None:
    """daemon.json edited in the page: a document dockerd refuses is refused with the server's reason
    and changes nothing; a good one is stored with what dockerd did. Stop and Start follow live."""
    chromium.open(page_of(up), "admin", up.password or "")
    area = chromium.by_id("daemon-json")
    until(lambda: (area.get_attribute("value") or "").strip().startswith("{"), 30)  # loaded from GET daemon.json
    before = up.curl(path=PREFIX + "daemon.json").body
    save = chromium.driver.find_element("css selector", "#daemon-json-form button[type=submit]")
    area.clear()
    area.send_keys('{"log-level": "shout"}')
    save.click()
    said = chromium.wait_text("daemon-json-result", starting("Saved", "Not saved"), 30)
    assert said.startswith("Not saved (400): Refused:") and "log-level" in said, said
    assert up.curl(path=PREFIX + "daemon.json").body == before
    area.clear()
    area.send_keys('{"max-concurrent-downloads": 4}')
    save.click()
    said = chromium.wait_text("daemon-json-result", starting("Saved", "Not saved"), 30)
    assert said.startswith("Saved; dockerd"), said
    assert up.curl(path=PREFIX + "daemon.json").body == '{"max-concurrent-downloads": 4}'
    until(lambda: up.status() != "1 DOCKERD STOPPED", 90)  # settled: 0, or 3 when no test uploaded files
    settled = up.status()
    chromium.mark()
    chromium.driver.find_element("css selector", "button[data-control=stop]").click()
    said = chromium.wait_text("control-result", starting("Done", "Refused", "Failed"), 120)
    assert said == "Done: the application is stopped.", said
    assert chromium.wait_text("app-state", lambda text: text == "stopped") == "stopped"
    assert chromium.wait_text("status-value", lambda text: text == "-1 NOT STARTED") == "-1 NOT STARTED"
    until(
        lambda: chromium.by_id("status-section").find_element("css selector", "[data-control=start]").is_enabled(), 10
    )
    chromium.driver.find_element("css selector", "button[data-control=start]").click()
    assert chromium.wait_text("status-value", lambda text: text == settled) == settled
    assert chromium.text("app-state") == "running" and chromium.marked()
    up.update(**{"DockerdLogLevel": "warn"})
    assert up.curl("-X", "PUT", "--data", "{}", path=PREFIX + "daemon.json").status == 204
