"""What a record is bound to besides its method file (issue 14 item 3): the dense weights it retrained
from and the harness source that ran it. Both are plain SHA-256 digests: they tell a record made from
other weights or other harness code, they prove nothing about who computed them."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Mapping

import torch


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes, in name order (independent of the file format)."""
    sha = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            sha.update(f"{name}={tensor!r};".encode())
            continue
        tensor = tensor.detach().cpu().contiguous()
        sha.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return sha.hexdigest()


@functools.lru_cache(maxsize=1)
def harness_digest() -> str:
    """SHA-256 over every ``*.py`` of the harness package (relative path and bytes, in path order), once per process."""
    root = Path(__file__).resolve().parents[1]
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        sha.update(str(path.relative_to(root)).encode() + b"\0")
        sha.update(hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()
