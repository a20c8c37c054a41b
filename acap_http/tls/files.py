"""The TLS files dockerd needs: for each file name the manifest declares, what it
holds, how it is stored and which dockerd flag reads it. Names only: reading the
files is ``tls``'s, which loads cryptography; what only needs the names imports this."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["TLS_FILES", "Content", "TlsFile"]


class Content(enum.Enum):
    AUTHORITIES = "CA certificates"  # their keys only verify signatures
    CERTIFICATES = "certificates"  # the first one's key signs TLS handshakes, the rest verify
    PRIVATE_KEY = "private key"


CA, SERVER_CERT, SERVER_KEY = "ca.pem", "server-cert.pem", "server-key.pem"


@dataclass(frozen=True)
class TlsFile:
    name: str
    description: str  # as in the original's "File is not a valid <description>."
    content: Content
    mode: int  # file mode on disk: keys are private to the app's user
    dockerd_flag: str

    @property
    def invalid_sentence(self) -> str:
        return f"File is not a valid {self.description}."


TLS_FILES: Mapping[str, TlsFile] = MappingProxyType(
    {
        tls_file.name: tls_file
        for tls_file in (
            TlsFile(CA, "CA certificate", Content.AUTHORITIES, 0o644, "--tlscacert"),
            TlsFile(SERVER_CERT, "server certificate", Content.CERTIFICATES, 0o644, "--tlscert"),
            TlsFile(SERVER_KEY, "server key", Content.PRIVATE_KEY, 0o600, "--tlskey"),
        )
    }
)
