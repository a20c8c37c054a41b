# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)
"""The docker API as the operator reaches it: over mutual TLS, the server verified against the CA
and the host's name, the operator's client pair presented; which certificate dockerd serves, and
what GET /version answers. The tls module proves a set with it once it is in place, in the same
module run that pushed it (a task per host less in a rotation), and waits for the certificate just
pushed to be the one served, so the proof is of the dockerd started with the new set."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import time
from urllib.parse import urlsplit

from ansible.module_utils.common.text.converters import to_text

LOOK_INTERVAL = 0.2
LOOK_TIMEOUT = 2.0


class DockerTlsError(Exception):
    """dockerd could not be reached, or refused the pair, or answered no docker API."""


def address(docker_host):
    """(host, port) of ``tcp://HOST:PORT`` (2376 when no port is given)."""
    parts = urlsplit(docker_host)
    if parts.scheme not in ("tcp", "https") or not parts.hostname:
        raise DockerTlsError("docker_host must be tcp://HOST:PORT, not %r" % docker_host)
    return parts.hostname, parts.port or 2376


def fingerprint(der):
    """SHA-256 of a certificate's DER, as vapix.certificate_fingerprints writes it."""
    return ":".join("%02X" % byte for byte in bytearray(hashlib.sha256(der).digest()))


def client_context(ca_pem, cert_path, key_path):
    """The operator's side of mutual TLS: the CA to verify dockerd with (``ca_pem``), the client pair."""
    try:
        context = ssl.create_default_context(cadata=to_text(ca_pem))
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ValueError) as err:
        raise DockerTlsError("cannot use the CA or the client pair %s, %s: %s" % (cert_path, key_path, to_text(err)))
    return context


def look(docker_host, context, tls_hostname=None):
    """One GET /version over mutual TLS: (the served certificate's fingerprint, the answer). The server's
    certificate must chain to the context's CA and name ``tls_hostname`` (the docker_host's host by
    default). LOOK_TIMEOUT bounds it: a restarting rootless dockerd's port may accept and not answer."""
    host, port = address(docker_host)
    try:
        raw = socket.create_connection((host, port), LOOK_TIMEOUT)
    except (OSError, ValueError) as err:
        raise DockerTlsError("cannot reach %s: %s" % (docker_host, to_text(err)))
    try:
        served = context.wrap_socket(raw, server_hostname=tls_hostname or host)
        raw = served
        certificate = served.getpeercert(binary_form=True)  # now: a closing answer takes the socket with it
        connection = http.client.HTTPConnection(host, port, timeout=LOOK_TIMEOUT)
        connection.sock = served
        connection.request("GET", "/version")
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise DockerTlsError("GET /version answered %d: %s" % (answer.status, to_text(body)[:200]))
        return fingerprint(certificate), json.loads(to_text(body))
    except (OSError, ValueError, http.client.HTTPException) as err:  # ssl.SSLError is an OSError
        raise DockerTlsError("%s over mutual TLS: %s" % (docker_host, to_text(err)))
    finally:
        raw.close()


def wait_until_served(wanted, within, docker_host, context, tls_hostname=None, clock=time.monotonic, sleep=time.sleep):
    """Look until dockerd serves the certificate ``wanted`` (fingerprint) and answers the docker API:
    (the version answer, None), or (None, why not) once ``within`` s have passed: the last error, or
    the other certificate it still serves."""
    began = clock()
    while True:
        try:
            served, version = look(docker_host, context, tls_hostname)
            if served == wanted:
                return version, None
            why = "dockerd at %s serves another certificate (SHA-256 %s)" % (docker_host, served)
        except DockerTlsError as err:
            why = str(err)
        if clock() - began >= within:
            return None, why
        sleep(LOOK_INTERVAL)
