"""Dense baselines: original training per the track's recipe, once per dense seed, cached by hash.

The cache key covers everything that determines the trained weights (data, split, model,
recipe, seed), so a changed recipe trains a new baseline and an unchanged one is never retrained.
The metadata holds the SHA-256 of the weights (``weights_sha256``, the digest records carry as
``dense_weights_sha256``); a cached file whose weights no longer match it is never used.

Training a baseline holds its advisory lock (``ResultsLayout.lock``), so processes sharing a results
folder train it once: the others wait, then read it. It saves its state after every epoch
(``ResultsLayout.dense_checkpoint``), so a process killed during dense training resumes from its last
epoch and ends with exactly the weights of an uninterrupted run; the checkpoint goes once the
baseline is cached.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from harness.core.atomic import torch_save_atomic, write_json_atomic
from harness.core.errors import BenchError
from harness.core.identity import config_hash
from harness.core.layout import ResultsLayout
from harness.core.locks import held
from harness.core.seeding import generator, seeded_init
from harness.methods.sources import weights_digest
from harness.models import create_model
from harness.track.definition import DataSection, ModelSection, Track
from harness.track.recipe import Recipe
from harness.track.schedules import original_step_values
from harness.train.checkpoints import FileCheckpoint
from harness.train.loop import evaluate, steps_per_epoch, train


class DenseConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data: DataSection
    model: ModelSection
    recipe: Recipe
    seed: int


@dataclass(frozen=True)
class DenseBaseline:
    hash: str
    seed: int
    state_dict: dict
    test_acc: float
    val_acc: float
    status: str
    weights_sha256: str
    """``weights_digest(state_dict)``, computed once when the baseline is trained or checked on loading."""


def dense_config(track: Track, seed: int) -> DenseConfig:
    return DenseConfig(data=track.data, model=track.model, recipe=track.recipe, seed=seed)


def dense_hash(track: Track, seed: int) -> str:
    return config_hash(dense_config(track, seed))


def new_model(track: Track, seed: int) -> torch.nn.Module:
    with seeded_init(seed):
        return create_model(track.model.name, track.model.num_classes)


def _read_cache(key: str, seed: int, weights: Path, meta: Path, device: str) -> DenseBaseline | None:
    """The cached baseline, or None (with a warning saying why) when it must be trained again: unreadable,
    another configuration's, or weights that do not match the digest recorded when they were trained."""
    if not (weights.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text())
        state = torch.load(weights, map_location=device, weights_only=True)
        if info["hash"] != key or info["status"] != "ok":
            return None
    except Exception as exc:  # unreadable, truncated or foreign: retrained over (torch's advice is never shown)
        print(f"warning: dense baseline {weights} is unreadable ({type(exc).__name__}); training it again",
              file=sys.stderr)
        return None
    recorded = info.get("weights_sha256")
    digest = weights_digest(state)
    if recorded != digest:
        why = "has no recorded digest" if recorded is None else "does not match the digest recorded when it was trained"
        print(f"warning: dense baseline {weights} {why}; training it again", file=sys.stderr)
        return None
    return DenseBaseline(key, seed, state, info["test_acc"], info["val_acc"], info["status"], digest)


def recorded_weights_digest(layout: ResultsLayout, track: str, key: str) -> str | None:
    """The SHA-256 a cached baseline's metadata records for its weights (None: no cache, or no digest)."""
    _, meta = layout.dense_files(track, key)
    try:
        return json.loads(meta.read_text()).get("weights_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def load_or_train_dense(track: Track, seed: int, splits, layout: ResultsLayout, device: str) -> DenseBaseline:
    """The cached baseline for ``seed``, training (and caching) it first if needed.

    A cache entry that cannot be read, or belongs to another configuration, is retrained over:
    training is deterministic, so the replacement is the baseline the entry should have held.
    """
    key = dense_hash(track, seed)
    weights, meta = layout.dense_files(track.name, key)
    cached = _read_cache(key, seed, weights, meta, device)
    if cached is not None:
        return cached
    with held(layout.lock(track.name, f"dense-{key}")):
        cached = _read_cache(key, seed, weights, meta, device)  # another process may have trained it meanwhile
        if cached is not None:
            return cached
        return _train_dense(track, seed, key, splits, layout, device)


def _train_dense(track: Track, seed: int, key: str, splits, layout: ResultsLayout, device: str) -> DenseBaseline:
    weights, meta = layout.dense_files(track.name, key)
    model = new_model(track, seed).to(device)
    values = original_step_values(track.recipe, steps_per_epoch(len(splits.train), track.recipe.batch_size))
    checkpoint = FileCheckpoint(layout.dense_checkpoint(track.name, key))
    result = train(model, splits.train, splits.val, track.recipe, values, generator(seed, "dense-data", device),
                   checkpoint=checkpoint)
    if result.status != "ok":
        checkpoint.discard()
        raise BenchError(f"dense training of track '{track.name}' (seed {seed}) diverged; lower the recipe's lr")
    test_acc = evaluate(model, splits.open_test())
    torch_save_atomic(model.state_dict(), weights)
    digest = weights_digest(model.state_dict())
    write_json_atomic(meta, {
        "hash": key, "seed": seed, "status": result.status, "test_acc": test_acc,
        "weights_sha256": digest,
        "val_acc": result.val_acc[-1] if result.val_acc else None,
        "config": dense_config(track, seed).model_dump(mode="json"),
        "curves": {"train_loss": result.train_loss, "val_acc": result.val_acc, "lr": result.lr},
    })
    checkpoint.discard()
    return DenseBaseline(key, seed, model.state_dict(), test_acc, result.val_acc[-1], result.status, digest)
