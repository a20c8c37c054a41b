"""The users of the fronts, one per camera access level, the same table for Apache (``up``,
digest) and gunicorn (``serve``, basic over TLS): their passwords, from the environment or
kept in a directory only root may enter, and the scrypt users file ``serve`` checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from acap_http.config import AppPaths
from acap_http.errors import SetupError
from acap_http.filestore import FileStore
from acap_http.manifest import Access
from acap_http.safedir import LinkRefused, SafeDir

logger = logging.getLogger(__name__)

# The front's users, one per camera access level, each with the variable its password may come from.
USERS = (
    ("admin", Access.ADMIN, "ACAP_HTTP_PASSWORD"),
    ("operator", Access.OPERATOR, "ACAP_HTTP_OPERATOR_PASSWORD"),
    ("viewer", Access.VIEWER, "ACAP_HTTP_VIEWER_PASSWORD"),
)


@dataclass(frozen=True)
class Password:
    value: str
    source: str  # for the banner: the variable it came from, or the file it is kept in
    shell: str  # how to write it in a shell command


def read_passwords(paths: AppPaths) -> dict[str, Password]:
    """Each front user's password: from the environment, else kept in the app directory."""
    if all(os.environ.get(variable) for _, _, variable in USERS):
        return {name: password_for(name, variable, None) for name, _, variable in USERS}
    with _private_dir(paths.front) as front:
        return {name: password_for(name, variable, front) for name, _, variable in USERS}


def password_for(user: str, variable: str, front: SafeDir | None) -> Password:
    """From the environment, else the one kept in ``front``, made on first use."""
    from_env = os.environ.get(variable)
    if from_env:
        return Password(checked(from_env, f"${variable}"), f"from ${variable}", f"${variable}")
    if front is None:
        raise SetupError(f"${variable} is not set and there is no directory to keep a password in")
    name = f"{user}.password"
    kept = front.path / name
    if front.is_file(name):
        value = front.read(name).decode("utf-8", errors="replace").strip()
    else:
        value = secrets.token_urlsafe(18)
        front.write(name, value.encode() + b"\n", 0o600)
        logger.info("Generated a password for %s in %s", user, kept)
    return Password(value, f"kept in {kept}", f"$(cat '{kept}')")


def checked(password: str, where: str) -> str:
    """``password`` when it can be hashed and written: UTF-8 (the environment may hold any bytes)."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise SetupError(f"the password in {where} is not valid UTF-8; use UTF-8 text") from None
    return password


def _private_dir(directory: Path) -> SafeDir:
    """The passwords' directory, this user's alone, opened without following a link: the app's
    user owns the app directory around it and could put a link or a directory of its own there."""
    try:
        front = SafeDir.open(directory, create_mode=0o700)
    except LinkRefused as err:
        raise SetupError(f"{err}; remove it to make new passwords") from None
    owner = front.stat().st_uid
    if owner != os.geteuid():
        front.close()
        raise SetupError(f"{directory} belongs to uid {owner}, not to this user; remove it to make new passwords")
    os.fchmod(front.fd, 0o700)
    return front


# scrypt's cost: about 50 ms a check on this kind of machine; a good password is then out of reach.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class HashedUser:
    name: str
    access: Access
    hashed: str  # scrypt$N$r$p$salt$hash, base64


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded[0]}${encoded[1]}"


def password_matches(password: str, hashed: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
        if scheme != "scrypt":
            return False
        wanted = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(wanted)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, wanted)


def users_file(passwords: dict[str, str]) -> str:
    """``name:level:hash`` lines for every user of the table."""
    return "".join(f"{name}:{access.word}:{hash_password(passwords[name])}\n" for name, access, _ in USERS)


def set_password(users: Path, name: str, password: str) -> list[Path]:
    """Put ``name``'s new hash in the users file, and the password in ``<name>.password`` beside
    it when install keeps one there; both written whole, root's alone. Returns what it wrote."""
    if not password:
        raise SetupError("an empty password")
    store = FileStore(users.parent, directory_mode=0o700)
    try:
        table = read_users_file(store.read(users.name).decode("utf-8"))
    except (OSError, UnicodeError, ValueError) as err:
        raise SetupError(f"cannot read the users file {users}: {err}") from None
    if name not in table:
        raise SetupError(f"{users} has no user {name}")
    table[name] = HashedUser(name, table[name].access, hash_password(password))
    store.write(users.name, "".join(f"{u.name}:{u.access.word}:{u.hashed}\n" for u in table.values()).encode(), 0o600)
    written = [users]
    if store.exists(f"{name}.password"):
        store.write(f"{name}.password", password.encode() + b"\n", 0o600)
        written.append(store.path(f"{name}.password"))
    return written


def read_users_file(text: str) -> dict[str, HashedUser]:
    users = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, level, hashed = line.split(":", 2)
        users[name] = HashedUser(name, Access.parse(level), hashed)
    return users
