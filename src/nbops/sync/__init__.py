"""Share runs and models through an MLflow tracking server: ``nbops.push(uri)`` and
``nbops.pull(uri)``. protocol.py says what travels and how; push.py, pull.py and
models.py move it; links.py keeps which local id is which remote id."""

from .pull import pull, pull_artifacts
from .push import push
from .summary import SyncSummary

__all__ = ["SyncSummary", "pull", "pull_artifacts", "push"]
