"""What a push or pull did: created, updated, unchanged and failed items, with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncSummary:
    """The outcome of :func:`nbops.push` or :func:`nbops.pull`.

    Each list holds ids: local run ids (``run:ID``) and model versions
    (``model:NAME/VERSION``) for a push, the same local ids for a pull. ``failed``
    holds ``{"id", "reason"}`` dicts; nothing that failed stops the rest."""

    direction: str
    server: str
    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, outcome: str, item: str, reason: str | None = None) -> None:
        """Record one item's outcome: created, updated, unchanged or failed."""
        if outcome == "failed":
            self.failed.append({"id": item, "reason": reason or "unknown error"})
        else:
            getattr(self, outcome).append(item)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (what the CLI prints with --json)."""
        return {
            "direction": self.direction,
            "server": self.server,
            "dry_run": self.dry_run,
            "created": list(self.created),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "failed": [dict(f) for f in self.failed],
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        verb = {"push": "pushed to", "pull": "pulled from"}.get(self.direction, self.direction)
        head = ("would be " if self.dry_run else "") + verb
        text = (
            f"{head} {self.server}: {len(self.created)} created, {len(self.updated)} "
            f"updated, {len(self.unchanged)} unchanged, {len(self.failed)} failed "
            f"({self.seconds:.1f} s)"
        )
        for fail in self.failed[:20]:
            text += f"\n  failed {fail['id']}: {fail['reason']}"
        if len(self.failed) > 20:
            text += f"\n  ... and {len(self.failed) - 20} more"
        return text

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"
