# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)
"""The Docker ACAP HTTP API as the modules use it: param.cgi list and update, the TLS files
(one at a time on a camera, as a set on acap-http), the set summary, and the VAPIX application
API (list.cgi, control.cgi) to see and start or stop the application; and the pure decisions
the modules make from its answers (what differs, what to send), kept apart so they are tested
against recorded answers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import Request, prepare_multipart

try:
    from cryptography.hazmat.primitives import serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

from urllib.error import HTTPError

APP = "dockerdwrapper"
GROUP = "root." + APP
PARAM_CGI = "/axis-cgi/param.cgi"
APPLICATIONS_LIST = "/axis-cgi/applications/list.cgi"
APPLICATIONS_CONTROL = "/axis-cgi/applications/control.cgi"
# control.cgi's answers other than OK (VAPIX Application API).
CONTROL_ERRORS = {
    "4": "the application is not installed",
    "5": "the application is already being started or stopped",
    "6": "the application is already running",
    "7": "the application is not running",
    "8": "the application could not start (see its log)",
    "9": "too many applications are running",
    "10": "the device refused it",
}
TLS_FILES = ("ca.pem", "server-cert.pem", "server-key.pem")
RESTART_HEADER = "X-Dockerd-Restart"

FRONT_ARGS = dict(
    url=dict(type="str", required=True),
    user=dict(type="str", default="admin"),
    password=dict(type="str", required=True, no_log=True),
    auth=dict(type="str", default="auto", choices=["auto", "digest", "basic"]),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    timeout=dict(type="float", default=30),
)

# What each Status means and what to do, for a module that fails on one.
HINTS = {
    -1: "the application is not running: start it (on a camera, in the Apps page)",
    0: "dockerd runs and answers",
    1: "dockerd is (re)starting, or was stopped and is being restarted",
    2: "dockerd exited with an error (often a daemon.json it rejects); change a setting or upload a file "
    "to try again, and read the application log",
    3: "a TLS file is missing: upload ca.pem, server-cert.pem and server-key.pem, or set UseTLS=no",
    4: "neither TCPSocket nor IPCSocket is on: turn one on",
    5: "SDCardSupport is on but no SD card is mounted: insert one, or set SDCardSupport=no",
    6: "the SD card is vfat or exfat: reformat it as ext4",
    7: "dockerd's user cannot write its data directory on the SD card: remove it or give it to that user",
    8: "the TLS files do not fit together (the key is not the certificate's, or a file cannot be used): "
    "upload a set that does",
}


# How often a wait reads Status: often enough to see a restart (dockerd is out for a few tenths of a
# second at least), rarely enough not to load the front.
STATUS_INTERVAL = 0.2
# After an upload that restarts dockerd, a Status of 0 counts once another Status was seen, or this many
# seconds later: the front answers the upload before its supervisor stops the old dockerd, which still
# reports 0 for that moment.
RESTART_SEEN_WITHIN = 3.0


class FrontError(Exception):
    """The front did not answer as the API says; the message is for the operator."""


def parse_list(body):
    """``root.dockerdwrapper.Name=value`` lines into {Name: value}; FrontError on an error line."""
    settings = {}
    for line in to_text(body).splitlines():
        if not line.strip():
            continue
        if line.startswith("# Error"):
            raise FrontError(line)
        key, sep, value = line.partition("=")
        if not sep or not key.startswith(GROUP + "."):
            raise FrontError("unexpected line from param.cgi: %r" % line)
        settings[key[len(GROUP) + 1 :]] = value
    return settings


def word(value):
    """A setting as param.cgi takes it: YAML's booleans (yes, true) become yes or no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return to_text(value)


def settings_to_change(current, wanted):
    """{Name: value} of the wanted settings that differ from the current ones (unknown names included,
    for the device to refuse)."""
    return dict((name, word(value)) for name, value in wanted.items() if current.get(name) != word(value))


def parse_status(text):
    """``'0 RUNNING'`` -> (0, 'RUNNING'); an unreadable one is (None, text)."""
    match = re.match(r"^(-?\d+) (.*)$", text or "")
    if not match:
        return None, text
    return int(match.group(1)), match.group(2)


def application_state(body, name=APP):
    """The Status list.cgi gives the application (Running, Stopped, Idle), or None if not listed."""
    try:
        reply = ET.fromstring(body)
    except ET.ParseError:
        raise FrontError("list.cgi answered no XML: %s" % to_text(body)[:200].strip())
    if reply.get("result") != "ok":
        raise FrontError("list.cgi answered %s" % to_text(body)[:200].strip())
    for application in reply.iter("application"):
        if application.get("Name") == name:
            return application.get("Status")
    return None


def certificate_fingerprints(pem):
    """SHA-256 fingerprints (colon hex, upper case) of each certificate of a PEM file, as the summary
    of GET /local/dockerdwrapper/tls gives them."""
    fingerprints = []
    for block in re.findall(rb"-----BEGIN CERTIFICATE-----\r?\n(.*?)-----END CERTIFICATE-----", pem, re.S):
        der = base64.b64decode(b"".join(block.split()))
        fingerprints.append(":".join("%02X" % byte for byte in bytearray(hashlib.sha256(der).digest())))
    return fingerprints


def key_public_sha256(pem):
    """SHA-256 (hex) of a private key's public half in DER SubjectPublicKeyInfo: how the summary names it."""
    key = serialization.load_pem_private_key(pem, password=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def local_identity(files):
    """What the summary would say of these files: fingerprints of certificates, the key's public hash."""
    return {
        "ca.pem": certificate_fingerprints(files["ca.pem"]),
        "server-cert.pem": certificate_fingerprints(files["server-cert.pem"]),
        "server-key.pem": key_public_sha256(files["server-key.pem"]),
    }


def stored_identity(summary):
    """The same, from the device's summary; None for a file it does not hold."""
    identity = {}
    for name in TLS_FILES:
        entry = summary.get(name) or {}
        if not entry.get("present") or entry.get("error"):
            identity[name] = None
        elif name == "server-key.pem":
            identity[name] = entry.get("public_key_sha256")
        else:
            identity[name] = [cert.get("sha256_fingerprint") for cert in entry.get("certificates", [])]
    return identity


def files_to_send(stored, local):
    """The names whose stored file differs from the local one (all of them when nothing can be compared)."""
    if stored is None:
        return list(TLS_FILES)
    return [name for name in TLS_FILES if stored.get(name) != local[name]]


def days_left(summary):
    """{file: days until its first certificate expires} from a summary."""
    left = {}
    for name in ("ca.pem", "server-cert.pem"):
        certificates = (summary.get(name) or {}).get("certificates") or []
        if certificates and "days_left" in certificates[0]:
            left[name] = min(cert["days_left"] for cert in certificates)
    return left


DIGEST_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def challenges(header):
    """The schemes a WWW-Authenticate header offers, lower case, with their parameters (the last
    of each scheme wins; enough for a front that offers one of each)."""
    offered = {}
    for scheme, rest in re.findall(r'(?:^|,)\s*([A-Za-z-]+)((?:\s+[^\s,=]+=(?:"[^"]*"|[^,]*)\s*,?)*)', header or ""):
        offered[scheme.lower()] = dict(
            (key.lower(), value.strip('"')) for key, value in re.findall(r'([^\s,=]+)=("[^"]*"|[^,]*)', rest)
        )
    return offered


def digest_header(params, method, uri, user, password, cnonce=None, count=1):
    """The Authorization header answering a Digest challenge (RFC 7616, qop auth), or None when
    the challenge asks for what this does not do (another algorithm, qop auth-int only)."""
    algorithm = params.get("algorithm", "MD5").upper()
    digest = DIGEST_HASHES.get(algorithm)
    qops = [qop.strip() for qop in params.get("qop", "").split(",") if qop.strip()]
    if digest is None or (qops and "auth" not in qops):
        return None

    def h(text):
        return digest(text.encode("utf-8")).hexdigest()

    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    ha1, ha2 = h("%s:%s:%s" % (user, realm, password)), h("%s:%s" % (method, uri))
    cnonce = cnonce or base64.b16encode(os.urandom(8)).decode().lower()
    nc = "%08x" % count
    fields = [("username", user), ("realm", realm), ("nonce", nonce), ("uri", uri), ("algorithm", algorithm)]
    if qops:
        response = h("%s:%s:%s:%s:auth:%s" % (ha1, nonce, nc, cnonce, ha2))
        fields += [("response", response), ("qop", "auth"), ("nc", nc), ("cnonce", cnonce)]
    else:
        fields += [("response", h("%s:%s:%s" % (ha1, nonce, ha2)))]
    if "opaque" in params:
        fields.append(("opaque", params["opaque"]))
    unquoted = ("algorithm", "qop", "nc")
    return "Digest " + ", ".join(
        "%s=%s" % (key, value) if key in unquoted else '%s="%s"' % (key, value) for key, value in fields
    )


def basic_header(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode("ascii")


def wait_for_status(front, codes, timeout, restart_due=False, clock=time.monotonic, sleep=time.sleep):
    """Read Status (and the application's state) every STATUS_INTERVAL s until its code is one of
    ``codes``. Returns (what was found, None), or (what was found, why it failed): the application is
    stopped (it will not start by itself, so this fails at once unless -1 is awaited), or ``timeout`` s
    passed. ``restart_due``: an upload has just asked for a restart, so 0 counts only as RESTART_SEEN_WITHIN
    says. A front that does not answer (restarting) is asked again until the time is up."""
    began = clock()
    code, text, application, restarted = None, "", None, not restart_due
    while True:
        try:
            code, text = front.status()
            application = front.application()
        except FrontError as err:
            code, text = None, str(err)
        waited = round(clock() - began, 1)
        restarted = restarted or code != 0 or waited >= RESTART_SEEN_WITHIN
        found = dict(status=dict(code=code, text=text), hint=HINTS.get(code, ""), application=application, waited=waited)
        if code in codes and (code != 0 or restarted):
            return found, None
        if application == "Stopped" and -1 not in codes:
            return found, "the application is stopped (Status %s %s): start it (the app module)" % (code, text)
        if waited >= timeout:
            shown = "%s %s" % (code, text) if code is not None else text
            return found, "Status is %s after %.0f s, not one of %s: %s" % (
                shown, waited, codes, HINTS.get(code, "see the application log"))  # fmt: skip
        sleep(STATUS_INTERVAL)


def open_front(module):
    """The front the module's parameters name; the module fails with the reason if it cannot be used."""
    try:
        return Front(module.params)
    except FrontError as err:
        module.fail_json(msg=str(err))


class Front:
    """The device's web front. It authenticates itself: digest (a camera, ``acap-http up``), or basic
    only over https (``acap-http serve``), never basic over plain http, where the password would
    travel in clear to whoever answers (urllib, left to itself, answers any scheme a server asks)."""

    def __init__(self, params, request=None):
        self.url = params["url"].rstrip("/")
        self.user, self.password = params["user"], params["password"]
        self.auth = params.get("auth") or "auto"
        self.tls = urlsplit(self.url).scheme == "https"
        if self.auth == "basic" and not self.tls:
            raise FrontError("auth=basic sends the password in clear over %s: use https, or auth=digest" % self.url)
        self.verified = bool(params["validate_certs"])
        # No credentials of urllib's own: not from ~/.netrc (sent as Basic, even over http), and no
        # redirect followed (an Authorization header would follow it, https to http included).
        self._request = request or Request(
            validate_certs=params["validate_certs"],
            ca_path=params.get("ca_path"),
            timeout=params["timeout"],
            follow_redirects="none",
            use_netrc=False,
            headers={"Accept": "*/*"},
        )

    def _open(self, method, path, data=None, headers=None):
        """(status, body, headers), authenticated; FrontError when the front cannot be reached, or
        asks for an authentication this front may not answer."""
        headers = dict(headers or {})
        if self.auth == "basic":
            headers["Authorization"] = basic_header(self.user, self.password)
        status, body, answered = self._send(method, path, data, headers)
        if status != 401 or "Authorization" in headers:
            return status, body, answered
        offered = challenges(answered.get("WWW-Authenticate", "") if answered else "")
        if "digest" in offered:
            target = urlsplit(self.url + path)
            uri = target.path + ("?" + target.query if target.query else "")
            header = digest_header(offered["digest"], method, uri, self.user, self.password)
            if header is None:
                raise FrontError("the front at %s asks for a Digest this module cannot answer: %s"
                                 % (self.url, offered["digest"]))  # fmt: skip
            headers["Authorization"] = header
        elif "basic" in offered and self.tls and self.verified and self.auth == "auto":
            headers["Authorization"] = basic_header(self.user, self.password)
        elif "basic" in offered:
            if not self.tls:
                why = "over plain http the password would travel in clear"
            elif not self.verified:
                why = "the front's certificate is not verified (validate_certs: false); say auth=basic to send it anyway"
            else:
                why = "auth is digest"
            raise FrontError("the front at %s asks for Basic authentication; not sent: %s" % (self.url, why))
        else:
            return status, body, answered
        return self._send(method, path, data, headers)

    def _send(self, method, path, data, headers):
        try:
            response = self._request.open(method, self.url + path, data=data, headers=headers)
            return response.getcode(), response.read(), response.headers
        except HTTPError as err:
            return err.code, err.read(), err.headers
        except Exception as err:  # urllib's URLError, socket and TLS errors
            raise FrontError("cannot reach %s: %s" % (self.url, to_text(err)))

    def settings(self):
        status, body, dummy = self._open("GET", PARAM_CGI + "?" + urlencode({"action": "list", "group": GROUP}))
        if status != 200:
            raise FrontError("param.cgi list answered %d: %s" % (status, to_text(body).strip()))
        return parse_list(body)

    def status(self):
        return parse_status(self.settings().get("Status", ""))

    def update(self, changes):
        query = urlencode([("action", "update")] + sorted((GROUP + "." + k, v) for k, v in changes.items()))
        status, body, dummy = self._open("GET", PARAM_CGI + "?" + query)
        text = to_text(body).strip()
        if status != 200 or text != "OK":
            raise FrontError("param.cgi update answered %d: %s" % (status, text))

    def application(self):
        """The application's state in list.cgi (Running, Stopped), or None where it cannot be read (a
        user below admin, a front without the application API)."""
        status, body, dummy = self._open("GET", APPLICATIONS_LIST)
        if status in (401, 403, 404):
            return None
        if status != 200:
            raise FrontError("list.cgi answered %d: %s" % (status, to_text(body).strip()))
        return application_state(body)

    def control(self, action):
        """control.cgi's start, stop or restart of the application; FrontError with the camera's error."""
        query = urlencode([("action", action), ("package", APP)])
        status, body, dummy = self._open("GET", APPLICATIONS_CONTROL + "?" + query)
        text = to_text(body).strip()
        if status == 200 and text == "OK":
            return
        code = text.partition("Error:")[2].strip()
        raise FrontError("control.cgi %s answered %d: %s%s" % (
            action, status, text, " (%s)" % CONTROL_ERRORS[code] if code in CONTROL_ERRORS else ""))  # fmt: skip

    def tls_summary(self):
        """The stored set's summary, or None where there is none (a camera: no such endpoint) or none to
        be had now (a stopped application's pages answer 503, as on a camera)."""
        status, body, dummy = self._open("GET", "/local/%s/tls" % APP)
        if status in (404, 503):
            return None
        if status != 200:
            raise FrontError("GET /local/%s/tls answered %d: %s" % (APP, status, to_text(body).strip()))
        return json.loads(to_text(body))

    def upload(self, files):
        """One set upload (acap-http), or one upload per file (a camera: ``single`` is what to send then).
        Returns the restart header of the last answer."""
        fields = dict(
            (name, {"filename": name, "content": data, "mime_type": "application/x-pem-file",
                    "multipart_encoding": "7or8bit"})
            for name, data in files.items()
        )
        content_type, body = prepare_multipart(fields)
        status, answer, headers = self._open("POST", "/local/%s/tls" % APP, body, {"Content-Type": content_type})
        if status == 204:
            return headers.get(RESTART_HEADER, "")
        raise FrontError("the set upload answered %d: %s" % (status, to_text(answer).strip()))

    def upload_each(self, files):
        """The original's way: one POST per file, named in the URL, the file in a part called file."""
        header = ""
        for name, data in files.items():
            content_type, body = prepare_multipart(
                {"file": {"filename": name, "content": data, "mime_type": "application/x-pem-file",
                          "multipart_encoding": "7or8bit"}}
            )
            status, answer, headers = self._open(
                "POST", "/local/%s/%s" % (APP, name), body, {"Content-Type": content_type}
            )
            if status != 204:
                raise FrontError("the upload of %s answered %d: %s" % (name, status, to_text(answer).strip()))
            header = headers.get(RESTART_HEADER, "") or header
        return header
