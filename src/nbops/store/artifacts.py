"""Content-addressed files: each artifact is stored once under its sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from .._errors import ArtifactError
from ..serving.runtime.codec import sha256_bytes, sha256_file  # noqa: F401 - re-exported

CHUNK = 1 << 20
MAX_NAME_BYTES = 1024  # an artifact name, folders included


def safe_name(name: str) -> str:
    """Return ``name`` as a relative POSIX path, or raise ArtifactError if it could
    escape the store (absolute, ``..``, drive letters, NUL bytes, empty)."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactError("an artifact name must be a non-empty string, e.g. 'model.skops'")
    if "\x00" in name:
        raise ArtifactError(f"artifact name {name!r} contains a NUL byte; choose a plain name")
    posix = name.replace("\\", "/")
    if PurePosixPath(posix).is_absolute() or PureWindowsPath(name).drive:
        raise ArtifactError(
            f"artifact name {name!r} is an absolute path; give a relative name such as "
            f"{PurePosixPath(posix).name!r}"
        )
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES or any(
        len(part.encode("utf-8", "surrogatepass")) > 255 for part in posix.split("/")
    ):
        raise ArtifactError(
            f"artifact name {name[:40]!r}... is too long ({len(name)} characters); use at "
            f"most {MAX_NAME_BYTES} bytes, and at most 255 per folder or file name"
        )
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if any(p == ".." for p in parts) or not parts:
        raise ArtifactError(
            f"artifact name {name!r} would leave the store ('..'); give a name inside it "
            f"such as {PurePosixPath(posix).name!r}"
        )
    return "/".join(parts)


class ArtifactStore:
    """Files under ``root/ab/cdef...`` named by the sha256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where the file with this sha256 lives (it may not exist); ArtifactError for a string
        that is not a sha256 hex digest."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ArtifactError(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def put_file(self, src: str | os.PathLike) -> tuple[str, int]:
        """Copy a file in; returns (sha256, size). Identical content is stored once."""
        src = Path(src)
        try:
            is_file = src.is_file()
        except OSError as exc:  # e.g. a path longer than the system allows
            raise ArtifactError(
                f"cannot use artifact path {str(src)[:80]!r}...: "
                f"{exc.strerror or exc}; pass an existing file"
            ) from None
        if not is_file:
            raise ArtifactError(f"artifact file {str(src)[:200]} does not exist or is not a file")
        self.root.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".incoming-{os.getpid()}-")
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as fh:
                for chunk in iter(lambda: fh.read(CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
            return self._settle(tmp, h.hexdigest())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes as an artifact; returns (sha256, size). Identical content is stored once."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".incoming-{os.getpid()}-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return self._settle(tmp, sha256_bytes(data))

    def _settle(self, tmp: str, digest: str) -> tuple[str, int]:
        dest = self.path(digest)
        size = os.path.getsize(tmp)
        if dest.exists():
            os.unlink(tmp)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        return digest, size

    def verify(self, sha256: str) -> Path:
        """Path of a stored file after checking its bytes still hash to ``sha256``."""
        from .._errors import ModelIntegrityError

        path = self.path(sha256)
        if not path.is_file():
            raise ArtifactError(f"artifact {sha256[:12]} is missing from {self.root}")
        actual = sha256_file(path)
        if actual != sha256:
            raise ModelIntegrityError(
                f"file {path} hashes to {actual[:12]}, but {sha256[:12]} was recorded: "
                "it was changed after it was stored. Restore it or log the artifact again."
            )
        return path

    def delete(self, sha256: str) -> None:
        """Remove the file with this sha256, if there is one."""
        path = self.path(sha256)
        if path.exists():
            os.chmod(path, 0o644)
            path.unlink()
