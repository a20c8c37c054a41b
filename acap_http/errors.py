"""Domain exceptions. They carry what went wrong in words an operator can act
on and know nothing of HTTP: the handlers map them to status codes."""


class AcapHttpError(Exception):
    """Base of every error this package raises on purpose."""


class ManifestError(AcapHttpError):
    """The manifest is missing, unreadable or declares something unusable."""


class InvalidPem(AcapHttpError):
    """An uploaded file is not the PEM data its slot needs; the message says why."""


class SetupError(AcapHttpError):
    """The host lacks something the product needs (a program, a module, a user)."""
