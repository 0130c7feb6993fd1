"""Bytes in and out of the service: JSON, the error type, file hashes, the skops trust check.

JSON goes through orjson when it is installed (much faster) and the standard library
otherwise; both refuse NaN and Infinity in bodies. ``ServiceError`` is what every
route raises for a bad request; ``http.py`` renders it in the error shape of the route's
protocol. ``sha256_file`` / ``sha256_bytes`` and ``skops_trust`` are the one copy of
the integrity checks: nbops' ``modelfile`` and ``store.artifacts`` use them too.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20

try:  # orjson is much faster; the standard library is the fallback
    import orjson

    def loads(data: bytes) -> Any:
        """Parse JSON bytes (NaN and Infinity are refused)."""
        return orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        """JSON bytes of ``obj``; numpy arrays and scalars are serialised as lists/numbers."""
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

    JSON_ERRORS: tuple = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - exercised only without orjson

    def _no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def loads(data: bytes) -> Any:
        """Parse JSON bytes (NaN and Infinity are refused)."""
        return json.loads(data, parse_constant=_no_constant)

    def dumps(obj: Any) -> bytes:
        """JSON bytes of ``obj``; numpy arrays and scalars are serialised as lists/numbers."""
        return json.dumps(obj, default=_plain, allow_nan=False).encode()

    JSON_ERRORS = (ValueError, UnicodeDecodeError)


def _plain(obj: Any) -> Any:
    item = getattr(obj, "tolist", None) or getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class ServiceError(Exception):
    """A request the service refuses: HTTP ``status``, a machine ``code``, a ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad(message: str, code: str = "INVALID_PARAMETER_VALUE") -> ServiceError:
    """A 400 ServiceError."""
    return ServiceError(400, code, message)


class StartupError(Exception):
    """The service folder cannot be served (missing file, hash mismatch, untrusted types)."""


def json_body(body: bytes) -> Any:
    """The parsed JSON body; raises a 400 ServiceError when it is not JSON."""
    try:
        return loads(body)
    except JSON_ERRORS as exc:
        raise bad(f"the body is not valid JSON: {exc}", "MALFORMED_REQUEST") from None


# -- integrity ------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks. Raises OSError if unreadable."""
    digest = hashlib.sha256()
    with open(Path(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def skops_trust(data: bytes, recorded: Any) -> tuple[list[str], list[str]]:
    """The skops trust check of a model file's bytes: ``(needed, unexpected)``, the
    types the file asks to trust and those of them not in ``recorded`` (the types
    recorded when it was saved). Load only when ``unexpected`` is empty, trusting
    ``needed``. Raises whatever skops raises for bytes that are not a skops file."""
    import skops.io as sio

    needed = sorted(sio.get_untrusted_types(data=data))
    return needed, sorted(set(needed) - set(recorded or []))
