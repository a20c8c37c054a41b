"""``acap-http certs init | check | push``: what each prints and returns."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from acap_http.errors import AcapHttpError, InvalidPem
from acap_http.tls import judging, making
from acap_http.tls.store import TlsStore


def init(hosts: list[str], out: Path, key_type: str, force: bool) -> int:
    for path in making.init(hosts, out, key_type=key_type, force=force):
        print(f"wrote {path}")
    host = hosts[0]
    print(
        "\nNext, push the set: to make run's front, or to the service's (make install):\n"
        f"  acap-http certs push --url http://127.0.0.1:8080 --user admin --dir {out}\n"
        "  acap-http certs push --url https://127.0.0.1:8443 --cacert /etc/acap-http/tls-cert.pem "
        f"--user admin --dir {out}\n"
        "then:\n"
        f"  docker --tlsverify --tlscacert {out}/ca.pem --tlscert {out}/cert.pem --tlskey {out}/key.pem "
        f"-H tcp://{host}:2376 version\n"
        f'  docker context create acap --docker "host=tcp://{host}:2376,ca={out}/ca.pem,'
        f'cert={out}/cert.pem,key={out}/key.pem" && docker --context acap version'
    )
    return 0


def check(directory: Path, hosts: list[str]) -> int:
    if not directory.is_dir():
        raise AcapHttpError(f"cannot read {directory}: no such directory")
    try:
        found = judging.findings(making.read_set(directory), hosts=hosts)
    except OSError as err:
        raise AcapHttpError(f"cannot read {directory}: {err.strerror}") from err
    for finding in found:
        print(finding)
    return 1 if any(finding.level is judging.Level.FAIL for finding in found) else 0


def push(url: str, user: str, directory: Path, verify: bool | str = True) -> int:
    from acap_http.frontclient import Front  # noqa: PLC0415  (requests: only this command needs it)

    files = read_server_set(directory)
    from acap_http.servers.users import checked  # noqa: PLC0415

    password = checked(os.environ.get("ACAP_HTTP_PASSWORD") or _ask_password(user), "$ACAP_HTTP_PASSWORD")
    front = Front(url, user, password, verify=verify)
    before = front.status()
    status, body, restart = front.push(files)
    print(f"{status} {body.strip()}".strip())
    if restart:
        print(f"dockerd: {restart}")
    if status != 204:
        return 1
    # No restart when the set was there already or dockerd would refuse it: Status is as it was.
    settled = front.status() if restart else front.status_after_restart(before)
    print(f"Status: {settled}")
    return 0


def read_server_set(directory: Path) -> dict[str, bytes]:
    """The server's three files from ``directory``, each checked as the product will check it."""
    store = TlsStore(directory)
    try:
        files = store.read()
    except OSError as err:
        raise AcapHttpError(f"cannot read {directory}: {err.strerror or err}") from None
    missing = [name for name, data in files.items() if data is None]
    if missing:
        raise AcapHttpError(f"{directory} lacks {', '.join(missing)} (make them with 'acap-http certs init')")
    checked = {}
    for name, data in files.items():
        assert data is not None
        try:
            checked[name] = store.validate(name, data)
        except InvalidPem as err:
            raise AcapHttpError(f"{directory / name}: {err}") from None
    return checked


def _ask_password(user: str) -> str:
    no_password = AcapHttpError("no password: set ACAP_HTTP_PASSWORD, or run this in a terminal")
    if not sys.stdin.isatty():
        raise no_password
    try:
        return getpass.getpass(f"password of {user}: ")
    except EOFError:
        raise no_password from None
