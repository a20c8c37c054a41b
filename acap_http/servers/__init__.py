"""Servers that carry the WSGI app: flup FastCGI, and the local Apache front."""
