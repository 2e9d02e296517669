"""Named, independent random streams derived from one run seed.

Data order, augmentation, the method's own randomness and the twin's channel choice each get
their own stream, so changing how one is consumed never shifts another. Torch is imported only by what
makes torch generators, so the audit derives its seeds without it.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


def derive_seed(seed: int, stream: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "little") >> 1


def generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, stream))
    return gen


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Module constructors draw from the global RNG; fork it so model init is seeded and leaves no trace."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        yield
