"""The audit's memo: a finished audit (and what is derived from it) kept under a digest of everything
it is computed from.

An audit is a pure function of the record files' bytes, the tuning histories, the claims file, the
configuration, the methods' sources, the harness's code and the versions of the libraries it calls.
When none of them changed since the last call, the kept result is the result, and `bench audit` and
`bench leaderboard` only read it. The memo only saves time, never stands in for the records: any
changed byte of any input is a new digest, and the audit is computed again. It is a pickle, so it is
signed with this machine's key (:mod:`harness.core.signing`) and one copied from elsewhere, edited
by hand or unreadable is ignored, never unpickled.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.audit.config import AuditConfig
from harness.core.atomic import write_bytes_atomic
from harness.core.errors import BenchError
from harness.core.identity import digest
from harness.core.layout import ResultsLayout
from harness.core.signing import machine_key, sign, signed_by
from harness.run.record import RecordFile

MEMO_FORMAT = 2
LIBRARIES = ("numpy", "scipy", "pydantic")
"""The libraries the audit's numbers and records' parsing come from."""


@lru_cache(maxsize=1)
def code_digest() -> str:
    """Every source file of the harness (where it is installed, and its bytes), Python's and the libraries'
    versions."""
    import harness

    package = Path(harness.__file__).resolve().parent
    sources = hashlib.sha256(str(package).encode())
    for path in sorted(package.rglob("*.py")):
        sources.update(b"\0" + path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest({"format": MEMO_FORMAT, "code": sources.hexdigest(), "python": sys.version,
                   "libraries": {name: metadata.version(name) for name in LIBRARIES}})


def inputs_digest(layout: ResultsLayout, files: dict[str, list[RecordFile]], claims_path: str | Path | None,
                  config: AuditConfig) -> str | None:
    """The digest of one audit's inputs; None when one cannot be read (then nothing is memoised and the
    audit itself reports the problem)."""
    from harness.methods.plugins import file_digest, method_digest, method_source
    from harness.methods.registry import registered_methods

    def current(method) -> str | None:
        """What a fresh audit compares the method's records against: its file as it is now."""
        source = method_source(method)
        return file_digest(source) if source is not None and source.is_file() else method_digest(method)

    try:
        return digest({
            "code": code_digest(),
            "root": str(layout.root),
            "records": {track: [[f.path.name, f.sha256, f.error] for f in found] for track, found in files.items()},
            "studies": {track: [[p.name, file_digest(p)] for p in sorted(layout.tuning(track).glob("*.json"))]
                        for track in files},
            "claims": [str(claims_path), file_digest(claims_path)] if claims_path else None,
            "config": asdict(config),
            "methods": [[m.name, str(method_source(m)), current(m)] for m in registered_methods()],
        })
    except (OSError, metadata.PackageNotFoundError):
        return None


def derived_key(inputs: str | None, name: str) -> str | None:
    """The key of something derived from an audit of ``inputs`` (None: audited from records in memory)."""
    return digest({"inputs": inputs, "derived": name}) if inputs is not None else None


def recall(path: Path, key: str | None) -> Any:
    """The value kept at ``path`` for ``key`` (an audit's :func:`inputs_digest`, or a :func:`derived_key`);
    None when there is none, or it is unsigned by this machine, for another key or unreadable. The key
    is read before anything is unpickled, so a stale entry costs no unpickling."""
    secret = machine_key()
    if key is None or secret is None:
        return None
    try:
        with open(path, "rb") as file:
            signature, kept_key = file.readline(256).strip(), file.readline(256).strip()
            if kept_key.decode() != key:
                return None
            body = file.read()
        if not signed_by(secret, kept_key + b"\n" + body, signature.decode()):
            return None
        return pickle.loads(body)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None


def remember(path: Path, key: str | None, value: object) -> None:
    """Keep ``value`` for ``key`` at ``path`` (one per selection of tracks: a new one replaces it)."""
    secret = machine_key()
    if key is None or secret is None:
        return
    try:
        signed = key.encode() + b"\n" + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, sign(secret, signed).encode() + b"\n" + signed)
    except (OSError, BenchError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        pass  # a read-only results folder, or a value that cannot be pickled: the memo only saves time
