"""Persistence: the only package that knows file formats."""

from .artifacts import ArtifactStore, safe_name, sha256_file
from .storage import LogStorage
from .store import TABLES, Store, get_store
from .table import LogTable

__all__ = ["ArtifactStore", "LogStorage", "LogTable", "Store", "TABLES", "get_store",
           "safe_name", "sha256_file"]
