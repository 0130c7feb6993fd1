"""Persistence: the only package that knows file formats."""

from .artifacts import ArtifactStore, safe_name, sha256_file
from .storage import LogStorage
from .store import MIN_PREFIX, TABLES, Collection, Store, copy_doc, get_store
from .table import LogTable

__all__ = [
    "ArtifactStore",
    "Collection",
    "LogStorage",
    "LogTable",
    "MIN_PREFIX",
    "Store",
    "TABLES",
    "copy_doc",
    "get_store",
    "safe_name",
    "sha256_file",
]
