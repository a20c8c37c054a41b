"""serve's TLS pair at start: a clear one-line error for what a service cannot use, never a prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acap_http.errors import SetupError
from acap_http.servers import serve
from acap_http.tls import making


def _options(tmp_path: Path, cert: Path, key: Path) -> serve.ServeOptions:
    return serve.ServeOptions(host="127.0.0.1", port=8443, app_dir=tmp_path / "app", cert=cert, key=key)


def test_an_encrypted_key_is_refused_not_prompted_for(tmp_path: Path) -> None:
    cert_pem, key_pem = making.front_pair("127.0.0.1")
    key = serialization.load_pem_private_key(key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )  # fmt: skip
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(encrypted)
    with serve._private_dir(tmp_path / "serve") as private, pytest.raises(SetupError, match="is encrypted"):
        serve._tls(_options(tmp_path, tmp_path / "cert.pem", tmp_path / "key.pem"), private)


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    cert_pem, _ = making.front_pair("127.0.0.1")
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(other)
    with serve._private_dir(tmp_path / "serve") as private, pytest.raises(SetupError, match="cannot use the TLS"):
        serve._tls(_options(tmp_path, tmp_path / "cert.pem", tmp_path / "key.pem"), private)


def test_the_pair_made_on_the_first_start_is_read_through_the_held_directory(tmp_path: Path) -> None:
    """Made, then loaded by way of the descriptor: a directory put in its place later is not read."""
    options = serve.ServeOptions(host="127.0.0.1", port=8443, app_dir=tmp_path / "app")
    with serve._private_dir(tmp_path / "serve") as private:
        (tmp_path / "serve").rename(tmp_path / "moved")
        (tmp_path / "serve").mkdir()  # the app user's swap: an empty directory of its own
        _, fingerprint, files = serve._tls(options, private)
    assert len(fingerprint) == 95 and (tmp_path / "moved" / "tls-key.pem").is_file()
    assert files[0].name == "tls-cert.pem"
