"""Lines of the store's files: encoding, checksums, headers, and naming damage.

Every line nbops writes is ``<payload>\\t<crc>\\n``: the payload is compact JSON (which
never contains a raw tab or newline), ``crc`` is the CRC-32 of the payload as 8
lowercase hex digits. CRC-32 detects every error burst of up to 32 bits, so any
flipped byte, torn write or merged line fails its check: a damaged line is never
read as other data.

The log (``nbops.db``) starts with a header line whose payload is
``{"nbops_store": 2, "log": <id>, "snapshot": <id or null>, "continues": [<old log id>,
<byte offset>] or null}``; every further line is one transaction, a JSON list of
operations (see storage.py). Snapshot files (``snapshots/<id>/<table>.jsonl``) hold one
document per line, ``<doc id>\\t<document JSON>\\t<crc>``.

Format 1 (nbops 0.1) had a header ``{"nbops_store": 1}`` and lines without a checksum;
it is still read, and the first write converts it to format 2.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .._errors import StoreError

FORMAT = 2
HEADER_LIMIT = 1 << 16  # a header line is a few hundred bytes; more means a foreign file


def _json_default(value: Any) -> Any:
    # numpy scalars / arrays and a few common types; anything else is the caller's bug.
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r:.80}")


def dumps(value: Any) -> bytes:
    """Compact JSON of ``value``; NaN and infinities as ``NaN``/``Infinity``. Raises
    StoreError for values JSON cannot hold."""
    try:
        text = json.dumps(value, default=_json_default, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"cannot store value: {exc}. Convert it to a number, string, list or dict first."
        ) from exc
    return text.encode()


def loads(payload: bytes) -> Any:
    """Parse JSON written by :func:`dumps` (orjson, or the standard parser for NaN)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)  # orjson rejects NaN/Infinity; json accepts them


def seal(payload: bytes) -> bytes:
    """``payload`` as a checked line: ``payload\\tcrc\\n``."""
    return b"%s\t%08x\n" % (payload, zlib.crc32(payload))


def parse_line(raw: bytes, legacy: bool = False) -> Any:
    """The JSON a log line holds (without its newline). ``legacy``: a format-1 line,
    which has no checksum, is taken as it is. ValueError when the checksum fails or the
    JSON does not parse."""
    payload = unseal(raw)
    if payload is None and legacy:
        payload = raw
    if payload is None:
        raise ValueError("checksum mismatch")
    return loads(payload)


def parse_doc_line(raw: bytes, legacy: bool = False) -> tuple[str, Any]:
    """``(key, document)`` of a snapshot line ``key<TAB>JSON``; ValueError (or
    UnicodeDecodeError, a subclass) when it is damaged (see :func:`parse_line`)."""
    payload = unseal(raw)
    if payload is None and legacy:
        payload = raw
    if payload is None:
        raise ValueError("checksum mismatch")
    key, tab, body = payload.partition(b"\t")
    if not tab:
        raise ValueError("no document key")
    return key.decode(), loads(body)


def unseal(raw: bytes) -> bytes | None:
    """The payload of a line (without its newline) if its checksum holds, else None."""
    if len(raw) < 10 or raw[-9:-8] != b"\t":
        return None
    crc = raw[-8:]
    if crc.strip(b"0123456789abcdef"):
        return None
    payload = raw[:-9]
    return payload if zlib.crc32(payload) == int(crc, 16) else None


def lost_newline(tail: bytes) -> bool:
    """Whether an unterminated last line is a whole transaction whose newline was
    overwritten by one damaged byte: no crash leaves that (a torn write is a prefix)."""
    return len(tail) > 10 and unseal(tail[:-1]) is not None


def new_id() -> str:
    """A random id for a log or snapshot."""
    return os.urandom(6).hex()


def header_line(log_id: str, snapshot: str | None, continues: list | None) -> bytes:
    """The first line of a log file."""
    return seal(
        dumps({"nbops_store": FORMAT, "log": log_id, "snapshot": snapshot, "continues": continues})
    )


@dataclass
class Header:
    """What the first line of a log says."""

    format: int
    log: str | None
    snapshot: str | None
    continues: list | None
    size: int  # bytes of the header line, newline included


def read_header(path: os.PathLike | str, data: bytes) -> Header:
    """Parse the header at the start of ``data`` (the first bytes of the file at ``path``).
    Raises StoreError naming the file when it is not an nbops log: nbops never writes
    to such a file."""
    end = data.find(b"\n")

    def foreign(why: str) -> StoreError:
        return StoreError(
            f"{path} is not an nbops store file ({why}). nbops leaves it untouched: move it "
            "aside, or point NBOPS_STORE / nbops.set_store() at another folder. To bring "
            f"the runs of a TinyDB JSON file in, run `nbops store import-tinydb {path}`."
        )

    if not data:
        raise foreign("it is empty")
    if end < 0:
        raise foreign("it has no line break, so no nbops header line")
    raw = data[:end]
    payload = unseal(raw)
    try:
        header = loads(payload if payload is not None else raw)
    except ValueError:
        raise foreign(f"unexpected first line {raw[:60]!r}") from None
    if not isinstance(header, dict) or "nbops_store" not in header:
        raise foreign(f"unexpected first line {raw[:60]!r}")
    fmt = header["nbops_store"]
    if not isinstance(fmt, int) or fmt < 1:
        raise foreign(f"unexpected first line {raw[:60]!r}")
    if fmt > FORMAT:
        raise StoreError(
            f"{path} was written by a newer nbops (format {fmt}); upgrade nbops to read it."
        )
    if fmt >= 2 and payload is None:
        raise StoreError(
            f"the header line of {path} is damaged (checksum mismatch). Run "
            "`nbops store check` to see the damage and `nbops store repair`."
        )
    return Header(fmt, header.get("log"), header.get("snapshot"), header.get("continues"), end + 1)


@dataclass
class Damage:
    """One damaged line: where it is and what it held, as far as can be told."""

    file: str
    line: int
    offset: int
    length: int
    reason: str
    touched: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for people: file, line, byte offset, size, reason, what it touched."""
        what = f"; it touched {', '.join(self.touched)}" if self.touched else ""
        return (
            f"{self.file} line {self.line} (byte {self.offset}, {self.length} bytes): "
            f"{self.reason}{what}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The damage as plain data (for `nbops store check --format json`)."""
        return {
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "length": self.length,
            "reason": self.reason,
            "touched": self.touched,
        }


_RUN_ID = re.compile(rb'"run_id":"([^"\\]{1,64})"')
_MODEL = re.compile(rb'"name":"([^"\\]{1,200})","version":(\d+)')
_REF = re.compile(rb'"ref":"([^"\\]{1,200})"')
_OP = re.compile(rb'\["(?:put|upd|mrg|ext|del)","([A-Za-z0-9_]+)",(\d+)')


def touched_by(raw: bytes, run_ids: dict[str, str] | None = None) -> list[str]:
    """Best-effort names of what a damaged line held: ``run <id>``, ``model <name>
    v<n>``, ``<table> document <id>``. ``run_ids`` maps run doc ids to run ids."""
    found: list[str] = []
    for m in _RUN_ID.finditer(raw):
        found.append(f"run {m.group(1).decode(errors='replace')}")
    for m in _MODEL.finditer(raw):
        found.append(f"model {m.group(1).decode(errors='replace')} v{int(m.group(2))}")
    for m in _OP.finditer(raw):
        table, doc_id = m.group(1).decode(), m.group(2).decode()
        if table == "runs" and run_ids and doc_id in run_ids:
            found.append(f"run {run_ids[doc_id]}")
        elif table == "models":
            refs = [r.group(1).decode(errors="replace") for r in _REF.finditer(raw)]
            found.extend(f"model {r}" for r in refs[:1]) if refs else found.append(
                f"models document {doc_id}"
            )
        else:
            found.append(f"{table} document {doc_id}")
    if not found:
        for m in _REF.finditer(raw):
            found.append(f"record {m.group(1).decode(errors='replace')}")
    return list(dict.fromkeys(found))
