"""Content identity: a configuration's hash names its result, so finished work is found, not redone.

As in OpenLTH, only fields that differ from their defaults enter the hash, so adding a
field with a default later keeps every existing hash (and every existing record) valid.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

HASH_LENGTH = 16


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free JSON: equal content always gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def config_hash(config: BaseModel, fields: set[str] | None = None) -> str:
    """Hash of the non-default fields of ``config`` (restricted to ``fields`` when given)."""
    content = config.model_dump(mode="json", include=fields, exclude_defaults=True)
    return digest(content)[:HASH_LENGTH]
