"""Property-based fuzzing of what clients control: the PEM validator, the multipart
reader, the judgment of a stored set, and param.cgi. The invariants:

- no 5xx (the documented 500 needs a failing disk, which nothing here causes);
- a refused upload changes no stored file;
- whatever is stored can be summarised and judged;
- no answer and no log line holds a control character that came from the client;
- params.json always parses.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import string
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from acap_http.errors import InvalidPem
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.logs import DockerdStyleFormatter
from acap_http.manifest import ACCESS_ENV, Manifest, ParamDecl
from acap_http.params import ParamStore
from acap_http.tls import uploads
from acap_http.tls.files import TLS_FILES
from acap_http.tls.store import TlsStore
from tests import multipart, pki
from tests.test_hardening import PARAM_CGI, Front

MATERIAL = pki.server_set()
EC = pki.key_pem(pki.ec_key(), pki.PrivateFormat.TraditionalOpenSSL)
CERT_DER = pki.certificate("fuzz", pki.ec_key(), server=True).public_bytes(Encoding.DER)
SEEDS = [MATERIAL.ca, MATERIAL.server_cert, MATERIAL.server_key, EC, MATERIAL.ca + MATERIAL.ca]
CONTROLS = "".join(chr(c) for c in [*range(32), 127, 0x85, 0x2028, 0x202E])


def _unsafe(text: str) -> list[str]:
    return [c for c in text.replace("\r\n", "") if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@st.composite
def pem_like(draw: st.DrawFn) -> bytes:
    """Valid PEM files, damaged a little: bytes flipped, inserted or cut, DER mutated, labels changed."""
    kind = draw(st.sampled_from(["seed", "der", "label", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "der":
        der = bytearray(CERT_DER)
        for _ in range(draw(st.integers(1, 4))):
            der[draw(st.integers(0, len(der) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(der)))
        return pki.der_pem(bytes(der[: max(cut, len(der) - draw(st.integers(0, 3)))]))
    data = draw(st.sampled_from(SEEDS))
    if kind == "label":
        label = draw(st.text(alphabet=string.ascii_uppercase + " -" + CONTROLS, max_size=20))
        return data.replace(b"CERTIFICATE", label.encode()).replace(b"PRIVATE KEY", label.encode())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at + draw(st.integers(0, 3)) :]
    return data


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Front:
    return Front(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def log_lines() -> Iterator[list[str]]:
    """Every log line written during the module, formatted as the product writes them."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(DockerdStyleFormatter().format(record))

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def _stored(front: Front) -> dict[str, bytes]:
    return {name: front.store.read(name) for name in front.listing() if front.store.exists(name)}


@given(data=pem_like(), slot=st.sampled_from(list(TLS_FILES)))
def test_pem_validator(data: bytes, slot: str) -> None:
    """Either stored bytes (which validate again to themselves) or InvalidPem with a clean message."""
    try:
        stored = uploads.validate(TLS_FILES[slot], data)
    except InvalidPem as err:
        assert _unsafe(str(err)) == []
        return
    assert uploads.validate(TLS_FILES[slot], stored) == stored


@given(data=pem_like(), slot=st.sampled_from(list(TLS_FILES)))
def test_upload(front: Front, log_lines: list[str], data: bytes, slot: str) -> None:
    """Through the app: 204 or a 4xx; a refusal changes nothing; answers and logs stay clean."""
    before = _stored(front)
    response = front.upload(slot, data)
    assert response.status_code in (204, 400), response.text
    assert _unsafe(response.text) == []
    if response.status_code != 204:
        assert _stored(front) == before
    assert all(_unsafe(line) == [] for line in log_lines)


# A header cannot hold CR or LF (HTTP ends it there; the test client refuses them).
HEADER_VALUES = st.text(
    alphabet=string.printable.strip() + " " + CONTROLS.replace("\r", "").replace("\n", ""), max_size=40
)


@given(
    content_type=st.one_of(
        st.just(multipart.content_type()),
        st.builds(lambda b: f"multipart/form-data; boundary={b}", HEADER_VALUES),
        HEADER_VALUES,
    ),
    field=st.none() | st.text(alphabet=string.ascii_letters + ".-" + CONTROLS, max_size=16),
    encoding=st.sampled_from(["", "base64", "quoted-printable", "8bit", "gzip", "BASE64 "]),
    payload=pem_like(),
    tail=st.binary(max_size=64),
    name=st.sampled_from([*TLS_FILES, "tls"]),
)
def test_multipart_reader(
    front: Front, log_lines: list[str], content_type: str, field: str | None, encoding: str, payload: bytes,
    tail: bytes, name: str,
) -> None:  # fmt: skip
    """Any body and Content-Type on any TLS endpoint: never a 5xx, never a change unless a 204."""
    headers = f"Content-Transfer-Encoding: {encoding}\r\n" if encoding else ""
    if encoding.strip().lower() == "base64":
        payload = base64.encodebytes(payload)
    body = multipart.body(multipart.part(field, payload, name, headers)) + tail
    before = _stored(front)
    response = front.request("POST", f"/local/dockerdwrapper/{name}", body=body, content_type=content_type)
    assert response.status_code < 500, response.text
    assert _unsafe(response.text) == []
    if response.status_code != 204:
        assert _stored(front) == before
    assert all(_unsafe(line) == [] for line in log_lines)


@given(
    files=st.fixed_dictionaries({name: st.one_of(st.none(), pem_like()) for name in TLS_FILES}),
)
def test_set_judgment(tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes | None]) -> None:
    """Whatever lies on disk (valid, damaged, missing) is summarised and judged without an error."""
    directory = tmp_path_factory.mktemp("set")
    for name, data in files.items():
        if data is not None:
            (directory / name).write_bytes(data)
    store = TlsStore(directory)
    summary = store.summary()
    text = json.dumps(summary)
    for data in files.values():  # not one line of base64 of any file, keys included
        body = [line.decode() for line in (data or b"").splitlines() if re.fullmatch(rb"[A-Za-z0-9+/=]{16,}", line)]
        assert not any(line in text for line in body)
    store.refusal()


QUERY_TEXT = st.text(alphabet=string.printable + CONTROLS + "é", max_size=60)


@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "action",
                    "group",
                    "root.dockerdwrapper.UseTLS",
                    "root.dockerdwrapper.Status",
                    "root.dockerdwrapper.DockerdLogLevel",
                    "usergroup",
                ]
            )
            | QUERY_TEXT,
            st.sampled_from(["list", "update", "yes", "no", "debug", "root.dockerdwrapper"]) | QUERY_TEXT,
        ),
        max_size=5,
    ),
    method=st.sampled_from(["GET", "POST"]),
    content_type=st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "application/json", None]),
    level=st.sampled_from(["admin", "viewer", "operator", "nobody"]),
)
def test_param_cgi(
    front: Front, log_lines: list[str], pairs: list[tuple[str, str]], method: str, content_type: str | None,
    level: str,
) -> None:  # fmt: skip
    """Any arguments, in the query or the body: 200 or 403, one clean line per answer, params.json parses."""
    encoded = urlencode(pairs)
    if method == "GET":
        response = front.request("GET", PARAM_CGI, query=encoded, level=level)
    else:
        response = front.request("POST", PARAM_CGI, body=encoded.encode(), content_type=content_type, level=level)
    assert response.status_code in (200, 403), response.text
    assert _unsafe(response.text) == []
    assert all(_unsafe(line) == [] for line in log_lines)
    kept = Path(front.store.directory).parent / "params.json"
    if kept.exists():
        assert isinstance(json.loads(kept.read_text()), dict)


# Values for a string and an int parameter: Unicode's line and paragraph separators among them
# (U+0085, U+2028 split a line for str.splitlines), and integers far past 64 bits.
VALUES = (
    st.text(alphabet=string.printable + CONTROLS + "\x1c\x1d\x1e\u2029é", max_size=40)
    | st.integers(min_value=-(10**4000), max_value=10**4000).map(str)
    | st.integers(min_value=0, max_value=6000).map(lambda n: "9" * n)
)
TYPED = Manifest("fuzzed", "Fuzzed", "0", (), (ParamDecl("Text", "string", ""), ParamDecl("Number", "int", "0")))


@given(text=VALUES, number=VALUES)
def test_typed_values(tmp_path_factory: pytest.TempPathFactory, text: str, number: str) -> None:
    """Any value for a string or an int parameter: OK and one clean line each when listed, or one
    error line per refused pair and nothing applied; never a 5xx."""
    store = ParamStore.from_manifest(TYPED, tmp_path_factory.mktemp("typed"))
    before = store.values()
    app = ParamCgi(ParamTree(store, "fuzzed", {}))
    query = urlencode({"action": "update", "root.fuzzed.Text": text, "root.fuzzed.Number": number})
    environ = {"REQUEST_URI": f"{PARAM_CGI}?{query}", "REMOTE_USER": "admin", ACCESS_ENV: "admin"}
    answer = app(Request(EnvironBuilder(path=PARAM_CGI, query_string=query, environ_base=environ).get_environ()))
    assert answer.status_code == 200 and _unsafe(answer.get_data(as_text=True)) == []
    if answer.get_data(as_text=True) != "OK\r\n":
        assert store.values() == before
    listed = app._list(None)
    assert len("\r\n".join(listed).splitlines()) == len(store.specs)


@given(schedule=st.lists(st.sampled_from([*TLS_FILES, "read"]), min_size=1, max_size=30))
def test_reads_while_files_go_and_come(tmp_path_factory: pytest.TempPathFactory, schedule: list[str]) -> None:
    """Deletes and uploads in one thread, in the drawn order, while another reads the set, summarises
    and judges it: every read sees each file whole or missing, never an error."""
    directory = tmp_path_factory.mktemp("churn")
    store, files = TlsStore(directory), MATERIAL.by_name()
    store.put_set(files)
    errors: list[str] = []

    def churn() -> None:
        for step in schedule:
            if step != "read":
                with contextlib.suppress(FileNotFoundError):
                    store.remove(step)
                store.put(step, files[step])

    churner = threading.Thread(target=churn)
    churner.start()
    while churner.is_alive():
        try:
            read = store.read()
            assert all(data in (None, files[name]) for name, data in read.items())
            store.refusal(read)
        except Exception as err:
            errors.append(repr(err))
    churner.join()
    assert errors == []
