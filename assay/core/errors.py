"""Errors shared by the client and the server. Each carries a one-line, user-facing message."""


class AssayError(Exception):
    """Base class: str(exc) is a complete, user-facing sentence."""


class DigestError(AssayError):
    """A digest string is malformed or bytes do not match their digest."""


class FormatError(AssayError):
    """Input is not in the expected format (GGUF, JSON statement, envelope, ...)."""


class VerificationError(AssayError):
    """A signature, statement, proof or policy check failed."""
