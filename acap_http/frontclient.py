"""A client of the product's front, as ``certs push`` (and an operator's script) uses it:
whichever authentication the front asks for (digest from Apache or a camera, basic over
verified TLS from ``serve``, never credentials from ~/.netrc, no redirect followed),
param.cgi's Status, and the set upload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth

from acap_http import config, identity
from acap_http.errors import AcapHttpError

RESTART_HEADER = config.RESTART_HEADER
TIMEOUT = 30.0


@contextmanager
def _reaching(url: str) -> Iterator[None]:
    """A front that cannot be reached is one line for the operator."""
    try:
        yield
    except requests.RequestException as err:
        reason = err.__context__ or err
        raise AcapHttpError(f"cannot reach {url}: {reason}") from None


class _Nobody(AuthBase):
    """No credentials: set on the session so that requests never takes any from ~/.netrc."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class Front:
    def __init__(self, url: str, user: str, password: str, *, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self.app_name = identity.NAME
        self._session = requests.Session()
        self._session.auth = _Nobody()
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's CA.
        self._verify = verify
        self._user, self._password = user, password
        self._auth: AuthBase | None = None

    def _request(
        self, method: str, path: str, files: dict[str, tuple[str, bytes, str]] | None = None
    ) -> requests.Response:
        with _reaching(self.url):
            if self._auth is None:
                self._auth = self._authentication(path)
            return self._session.request(
                method, self.url + path, auth=self._auth, timeout=TIMEOUT, verify=self._verify, files=files,
                allow_redirects=False,
            )  # fmt: skip

    def _authentication(self, path: str) -> AuthBase:
        """The scheme the front challenges with (as curl --anyauth does): digest, else basic, and
        basic only over HTTPS with the certificate verified: anywhere else the password would go
        in clear to whoever asked for it."""
        probe = self._session.get(self.url + path, timeout=TIMEOUT, verify=self._verify, allow_redirects=False)
        challenge = probe.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("basic"):
            if not self.url.lower().startswith("https://") or self._verify is False:
                raise AcapHttpError(
                    f"{self.url} asks for Basic authentication, which would send the password in clear: "
                    "use https:// with the front's certificate verified"
                )
            return HTTPBasicAuth(self._user, self._password)
        return HTTPDigestAuth(self._user, self._password)

    def status(self) -> str:
        answer = self._request("GET", f"/axis-cgi/param.cgi?action=list&group=root.{self.app_name}.Status")
        if answer.status_code != 200:
            raise AcapHttpError(f"{self.url} answered {answer.status_code} {answer.reason}")
        return answer.text.strip().partition("=")[2]

    def status_after_restart(self, before: str, timeout: float = 60, quiet: float = 5) -> str:
        """The Status the restart an upload asked for leads to: once the restart has been seen
        under way (1, or -1 while the app starts) and has settled, or once Status differs from
        ``before``. Never ``before`` read too early: a restart shows 1 for a quarter of a second
        at least, and this asks every 50 ms. If nothing changes for ``quiet`` seconds, that is it."""
        began = time.monotonic()
        under_way = False
        while True:
            status = self.status()
            if status.startswith(("1 ", "-1 ")):
                under_way = True
            elif under_way or status != before or time.monotonic() - began > quiet:
                return status
            if time.monotonic() - began > timeout:
                return status
            time.sleep(0.05)

    def push(self, files: dict[str, bytes]) -> tuple[int, str, str]:
        """POST the three server files as one set; returns status, body and the restart header."""
        parts = {name: (name, data, "application/x-pem-file") for name, data in files.items()}
        answer = self._request("POST", f"/local/{self.app_name}/tls", files=parts)
        return answer.status_code, answer.text, answer.headers.get(RESTART_HEADER, "")
