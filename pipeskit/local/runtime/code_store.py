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

    def _materialize(self, key: str, zips: Sequence[bytes]) -> Path:
        """``root/key`` holding ``zips`` extracted in order (a later one over an earlier), built once."""
        target = self._root / key
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                staging = self._root / f".{key}.{secrets.token_hex(4)}"
                staging.mkdir(parents=True)
                for code in zips:
                    with zipfile.ZipFile(io.BytesIO(code)) as archive:
                        archive.extractall(staging)
                        _restore_modes(archive, staging)
                staging.rename(target)
        return target

    def task_root(self, spec: FunctionSpec) -> Path:
        """Directory holding the function's code (its ``/var/task``)."""
        # moto's CodeSha256 is base64 (may hold "/"): hash it again into a file name
        digest = hashlib.sha256(spec.code_sha256.encode() if spec.code_sha256 else spec.code_bytes).hexdigest()[:32]
        return self._materialize(f"task-{digest}", [spec.code_bytes] if spec.code_bytes else [])

    def opt_root(self, layers: Sequence[LayerSpec]) -> Path:
        """Directory holding the layers extracted in order, a later one over an earlier (``/opt``)."""
        digest = hashlib.sha256("\0".join(layer.sha256 or layer.arn for layer in layers).encode()).hexdigest()[:32]
        return self._materialize(f"opt-{digest}", [layer.code_bytes for layer in layers])


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
