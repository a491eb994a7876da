"""Writing PKI files safely: keys are 0600 from the moment they exist, and every file is replaced
atomically (temp file, fsync, rename) so a broker reloading on change never reads half a file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

PRIVATE = 0o600
PUBLIC = 0o644


class CertError(Exception):
    """A PKI operation failed in a way the user can fix (message is safe to print)."""


def write_atomic(path: Path, data: bytes, *, mode: int = PUBLIC) -> None:
    """Replace `path` with `data`; the temp file is created with `mode` (O_EXCL), so a key file is
    never readable by others, not even between create and chmod."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have removed bits; make the mode exact
        with os.fdopen(fd, "wb", closefd=True) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path, *, private: bool = False) -> None:
    """Create a directory (and parents); a CA directory is 0700 because it holds the CA key."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o755)


@contextlib.contextmanager
def locked(ca_dir: Path) -> Iterator[None]:
    """Serialise updates of one CA's index and CRL across processes (parallel test workers)."""
    fd = os.open(ca_dir / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CertError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise CertError(f"cannot read {what} {path}: {exc.strerror}") from None
