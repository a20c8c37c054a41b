"""acap-http: run a Docker daemon on a Linux host and manage it over HTTP.

The same code serves as the camera application (FastCGI on the socket in
``FCGI_SOCKET_NAME``) and, with its own Apache in front or gunicorn, on any Linux host.
"""

from acap_http.identity import VERSION as __version__

__all__ = ["__version__"]
