"""The TLS file endpoint as an operator meets it: real curl --anyauth, real
Apache with digest authentication, the app behind it over FastCGI."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests import pki
from tests.e2e.front import PREFIX, Front

TLS_NAMES = ("ca.pem", "server-cert.pem", "server-key.pem")


@pytest.fixture(scope="module")
def server_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three server files on the operator's disk, with CRLF line endings as Windows tools write them."""
    directory = tmp_path_factory.mktemp("operator")
    files = {}
    for name, data in pki.server_set().by_name().items():
        files[name] = directory / name
        files[name].write_bytes(data.replace(b"\n", b"\r\n"))
    return files


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def test_no_credentials_is_401_digest(front: Front, server_files: dict[str, Path]) -> None:
    """Without credentials Apache answers 401 with a Digest challenge, and nothing is stored."""
    before = _snapshot(front.localdata)
    answer = front.curl("-F", f"file=@{server_files['ca.pem']}", "-X", "POST", path=PREFIX + "ca.pem", user=None)
    assert answer.status == 401
    assert "WWW-Authenticate: Digest" in answer.headers
    assert _snapshot(front.localdata) == before


def test_wrong_password_is_401_and_never_reaches_the_app(front: Front, server_files: dict[str, Path]) -> None:
    """A wrong password gets Apache's 401; the app sees no request (nothing stored, nothing logged)."""
    before = _snapshot(front.localdata)
    log_before = front.log()
    answer = front.upload("server-cert.pem", server_files["server-cert.pem"], password="wrong")
    assert answer.status == 401
    assert _snapshot(front.localdata) == before
    new_lines = front.log()[len(log_before) :]
    assert "Stored" not in new_lines and "Refused" not in new_lines


@pytest.mark.parametrize("name", TLS_NAMES)
def test_post_each_file_then_delete_twice(front: Front, server_files: dict[str, Path], name: str) -> None:
    """POST stores the same bytes (LF line endings) with mode 0644/0600; DELETE removes; again is 404."""
    answer = front.upload(name, server_files[name])
    assert (answer.status, answer.body) == (204, "")
    stored = front.localdata / name
    assert stored.read_bytes() == server_files[name].read_bytes().replace(b"\r\n", b"\n")
    assert stat.S_IMODE(stored.stat().st_mode) == (0o600 if name == "server-key.pem" else 0o644)

    deleted = front.curl("-X", "DELETE", path=PREFIX + name)
    again = front.curl("-X", "DELETE", path=PREFIX + name)
    assert deleted.status == 204
    assert not stored.exists()
    assert (again.status, again.body) == (404, "File not found in localdata\r\n")


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_other_methods_are_405(front: Front, method: str) -> None:
    """GET and PUT get the original 405 sentence."""
    answer = front.curl("-X", method, path=PREFIX + "ca.pem")
    assert (answer.status, answer.body) == (405, "Unsupported request method\r\n")


@pytest.mark.parametrize(
    "path",
    [
        PREFIX + "params.json",
        PREFIX + "../dockerdwrapper/params.json",
        PREFIX + "..%2Fparams.json",
        PREFIX + "%2e%2e/%2e%2e/etc/passwd",
        PREFIX + "data/../params.json",
        PREFIX + "localdata/ca.pem",
    ],
)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_other_names_and_dot_dot_are_404(front: Front, server_files: dict[str, Path], path: str, method: str) -> None:
    """Names outside the manifest's endpoints, with or without ../ tricks, are 404 and touch nothing."""
    front.localdata.mkdir(parents=True, exist_ok=True)
    (front.localdata / "daemon.json").write_text("{}\n")
    before = _snapshot(front.localdata)
    form = ["-F", f"file=@{server_files['ca.pem']}"] if method == "POST" else []
    answer = front.curl("--path-as-is", *form, "-X", method, path=path)
    assert answer.status == 404
    assert _snapshot(front.localdata) == before


@pytest.mark.parametrize(
    ("name", "wrong", "sentence"),
    [
        ("server-key.pem", "server-cert.pem", "File is not a valid server key. The block on line 1 is a certificate, "
         "not a private key."),
        ("server-cert.pem", "server-key.pem", "File is not a valid server certificate. The block on line 1 is a "
         "private key, not a certificate."),
        ("ca.pem", "server-key.pem", "File is not a valid CA certificate. The block on line 1 is a private key, "
         "not a certificate."),
    ],
)  # fmt: skip
def test_bad_pem_is_400_with_the_sentence(
    front: Front, server_files: dict[str, Path], name: str, wrong: str, sentence: str
) -> None:
    """A file of the wrong kind is 400 with the original sentence for its slot, and the reason; nothing changes."""
    before = _snapshot(front.localdata)
    answer = front.upload(name, server_files[wrong])
    assert (answer.status, answer.body) == (400, sentence + "\r\n")
    assert _snapshot(front.localdata) == before


def test_over_the_cap_is_413(front: Front, tmp_path: Path) -> None:
    """A file over the 64 KiB cap is refused with 413."""
    big = tmp_path / "ca.pem"
    big.write_bytes(b"A" * (80 * 1024))
    answer = front.upload("ca.pem", big)
    assert answer.status == 413
    assert "65536 bytes" in answer.body


def test_not_multipart_is_4xx(front: Front, server_files: dict[str, Path]) -> None:
    """A raw PEM body instead of a form upload is refused, saying to use multipart/form-data."""
    answer = front.curl(
        "-H",
        "Content-Type: application/x-pem-file",
        "--data-binary",
        f"@{server_files['ca.pem']}",
        path=PREFIX + "ca.pem",
    )
    assert answer.status == 415
    assert "multipart/form-data" in answer.body


@pytest.mark.parametrize("count", [0, 2])
def test_zero_or_two_file_parts_are_400(front: Front, server_files: dict[str, Path], count: int) -> None:
    """Exactly one file part is accepted; zero or two are 400."""
    form = ["-F", "note=no file here"] + [f"-Ffile{i}=@{server_files['ca.pem']}" for i in range(count)]
    answer = front.curl(*form, "-X", "POST", path=PREFIX + "ca.pem")
    assert answer.status == 400
    assert f"got {count}" in answer.body
