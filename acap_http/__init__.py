"""acap-http: run a Docker daemon on a Linux host and manage it over HTTP.

The same code serves as the camera application (FastCGI on the socket in
``FCGI_SOCKET_NAME``) and, with its own Apache in front, on any Linux host.
"""

__version__ = "0.1.0"
