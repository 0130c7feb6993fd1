"""The service state the HTTP app and the batch command share: model versions, logs,
metrics and the canary. It never imports nbops: canary events wait in
``logs/events.jsonl`` until nbops copies them into the registry (``LocalService``
does so while it runs the service; ``nbops.monitor`` does on every call)."""

import json
import time
import uuid
from pathlib import Path
from typing import Any

from .codec import dumps
from .inputs import Table
from .log import JsonLog, prediction_records
from .metrics import Metrics
from .model import ModelVersion


class Service:
    """Everything the HTTP app and the batch command share: models, logs, canary."""

    def __init__(
        self,
        folder: Path,
        log_max_bytes: int = 50 * 1024 * 1024,
        token: str | None = None,
        shared_metrics: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.stable = ModelVersion(self.folder)
        self.token = token
        self.ready = False
        logs = self.folder / "logs"
        self.metrics = Metrics(logs / "metrics" if shared_metrics else None)
        self.predictions = JsonLog(logs / "predictions.jsonl", log_max_bytes)
        self.feedback = JsonLog(logs / "feedback.jsonl", log_max_bytes)
        self.events_path = logs / "events.jsonl"
        self.canary: Any = None  # a Canary when the folder has canary.json
        config_path = self.folder / "canary.json"
        if config_path.is_file():
            config = json.loads(config_path.read_text())
            candidate = ModelVersion(self.folder / str(config.get("folder", "canary")))
            from .canary import Canary  # only a folder with a canary needs it

            self.canary = Canary(self, candidate, config)

    @property
    def name(self) -> str:
        """The model name."""
        return self.stable.name

    def versions(self) -> list[ModelVersion]:
        """The stable version, then the canary candidate if there is one."""
        return [self.stable] + ([self.canary.candidate] if self.canary else [])

    def version(self, label: str) -> ModelVersion | None:
        """The served version labelled ``label`` ("1", "2", ...), or None."""
        for mv in self.versions():
            if mv.label == label:
                return mv
        return None

    def load(self) -> None:
        """Load what the models need and start the log writers; then ``ready``."""
        for mv in self.versions():
            mv.load()
        self.predictions.start()
        self.feedback.start()
        self.metrics.start_sharing()
        self.ready = True

    def close(self) -> None:
        """Write what is queued (logs, shared metrics)."""
        self.predictions.close()
        self.feedback.close()
        self.metrics.stop_sharing()

    def write_event(self, event: dict) -> None:
        """Append a canary event to logs/events.jsonl."""
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.events_path, "ab") as fh:
            fh.write(dumps(event) + b"\n")

    def score(
        self,
        table: Table,
        text: bool = False,
        rid: str | None = None,
        version: ModelVersion | None = None,
    ) -> tuple[ModelVersion, list[Any], str]:
        """Check and score a table: (model version used, predictions, request id).
        ``version`` pins a version (no canary routing). Raises a 400 ServiceError for
        input the signature or the model refuses."""
        rid = rid or uuid.uuid4().hex[:16]
        t0 = time.perf_counter()
        if version is not None:
            mv = version
        else:
            mv = self.canary.choose() if self.canary is not None else self.stable
        cols, rows = (mv.text_matrix if text else mv.matrix)(table)
        if mv is self.stable or version is not None:
            preds = mv.checked_predict(cols, rows)
        else:
            try:
                preds = mv.predict(cols, rows)
            except Exception as exc:  # the candidate failed: count it, answer with stable
                self.canary.record(
                    False, (time.perf_counter() - t0) * 1000, f"{type(exc).__name__}: {exc}"
                )
                mv = self.stable
                cols, rows = (mv.text_matrix if text else mv.matrix)(table)
                preds = mv.checked_predict(cols, rows)
            else:
                self.canary.record(True, (time.perf_counter() - t0) * 1000)
        latency = (time.perf_counter() - t0) * 1000
        self.metrics.rows[mv.label] = self.metrics.rows.get(mv.label, 0) + len(rows)
        self.predictions.append(
            prediction_records(rid, time.time(), mv.label, cols, rows, preds, round(latency, 3))
        )
        return mv, preds, rid
