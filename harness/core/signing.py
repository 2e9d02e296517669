"""This machine's key for signing caches kept beside results (the record index, the audit memo).

A cache is only trusted when this machine wrote it: one copied with a results folder, or edited by
hand, fails its signature and is ignored, so results received from someone else are always checked
(and audited) in full, and a stored audit is never unpickled unless this machine pickled it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from harness.core.atomic import write_text_atomic
from harness.core.errors import BenchError

KEY_ENV = "PRUNE_BENCH_INDEX_KEY"
"""The file holding this machine's key (default ``~/.cache/prune-bench/index.key``)."""


def machine_key() -> bytes | None:
    """This machine's secret, made on first use; None when it cannot be kept (then no cache is used)."""
    path = Path(os.environ.get(KEY_ENV) or Path.home() / ".cache" / "prune-bench" / "index.key")
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, secrets.token_hex(32))
        os.chmod(path, 0o600)
        return path.read_bytes()
    except (OSError, BenchError):
        return None


def sign(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def signed_by(key: bytes, data: bytes, signature: str) -> bool:
    return hmac.compare_digest(signature, sign(key, data))
