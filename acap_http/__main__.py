"""``python -m acap_http`` is the ``acap-http`` command."""

from acap_http.cli import main

raise SystemExit(main())
