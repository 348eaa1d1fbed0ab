"""Function and layer zips extracted on disk, once per content hash (an environment's ``/var/task`` and ``/opt``)."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import shutil
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pipeskit.local.runtime.specs import FunctionSpec, LayerSpec


class CodeStore:
    """Extracts function and layer zips once per content hash."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _extract(self, kind: str, sha: str, code: bytes) -> Path:
        # moto's CodeSha256 is base64 (may hold "/"): hash it again into a file name
        digest = hashlib.sha256(sha.encode() if sha else code).hexdigest()[:32]
        key = f"{kind}-{digest}"
        target = self._root / key
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                staging = self._root / f".{key}.{secrets.token_hex(4)}"
                staging.mkdir(parents=True)
                if code:
                    with zipfile.ZipFile(io.BytesIO(code)) as archive:
                        archive.extractall(staging)
                        _restore_modes(archive, staging)
                staging.rename(target)
        return target

    def task_root(self, spec: FunctionSpec) -> Path:
        """Directory holding the function's code (its ``/var/task``)."""
        return self._extract("task", spec.code_sha256, spec.code_bytes)

    def opt_root(self, layers: Sequence[LayerSpec]) -> Path:
        """Directory holding the layers extracted in order, a later one over an earlier (``/opt``)."""
        digest = hashlib.sha256("\0".join(layer.sha256 or layer.arn for layer in layers).encode()).hexdigest()[:32]
        key = f"opt-{digest}"
        target = self._root / key
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                staging = self._root / f".{key}.{secrets.token_hex(4)}"
                staging.mkdir(parents=True)
                for layer in layers:
                    with zipfile.ZipFile(io.BytesIO(layer.code_bytes)) as archive:
                        archive.extractall(staging)
                        _restore_modes(archive, staging)
                staging.rename(target)
        return target


def _restore_modes(archive: zipfile.ZipFile, root: Path) -> None:
    for info in archive.infolist():
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            try:
                os.chmod(root / info.filename, mode | 0o400)
            except OSError:
                pass


def remove_tree(path: Path) -> None:
    """Remove an extraction directory, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
