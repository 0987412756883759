"""Errors raised by registry services, carrying the HTTP status that fits."""


class RegistryError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def not_found(what: str) -> RegistryError:
    return RegistryError(404, f"{what} not found")
