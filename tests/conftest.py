"""Settings shared by every test: the hypothesis profiles.

``ci`` (the default, inside ``make test``) keeps the property tests to a few
seconds each; ``make fuzz`` runs them again and again with new seeds and more
examples (``HYPOTHESIS_PROFILE=fuzz``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "fuzz", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
