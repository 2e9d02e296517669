"""The audit's thresholds, in one frozen place, with the defaults of the design brief.

Changing a threshold changes what the audit flags, so the configuration in force is printed in
every report and stored in ``audit.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.core.choices import RECOMMENDED_SEEDS
from harness.core.errors import BenchError


@dataclass(frozen=True)
class AuditConfig:
    """Thresholds of the rules R1-R15 and of the statistics behind them.

    Accuracies are fractions (0.93, not 93), so margins and tolerances on accuracy are too:
    ``0.005`` is half a percentage point.
    """

    alpha: float = 0.05
    """Significance level of every two-sided test. Every one-sided decision -- a claim of any kind, the
    tables' TOST (each of its two tests) -- is at ``claim_level`` = alpha / 2, the side of a two-sided
    test at alpha."""
    power: float = 0.8
    """Power at which the minimum detectable difference is computed."""
    confidence: float = 0.95
    """Coverage of the intervals printed for cells and differences."""
    budget_tolerance: float = 0.05
    """R1: retraining steps of compared entries may differ by this relative amount."""
    macs_tolerance: float = 0.02
    """R3: MACs after pruning may differ by this relative amount."""
    sparsity_tolerance: float = 0.005
    """R3: sparsity may differ by this much (0.005 = 0.5 percentage points)."""
    dense_tolerance: float = 0.005
    """R4: a reported dense accuracy may differ from the reproduced one by this much."""
    min_seeds: int = 3
    """R5: a cell with fewer successful seeds fails."""
    recommended_seeds: int = RECOMMENDED_SEEDS
    """R5: a cell with fewer successful seeds (but at least ``min_seeds``) warns."""
    equivalence_margin: float = 0.005
    """R8 and the ``equivalent`` verdict: TOST margin when a claim states none."""
    reported_gap_tolerance: float = 0.01
    """R11: a reported number may differ from the reproduced mean by this much."""
    n_resamples: int = 9999
    """Permutations (when not exhaustive) and bootstrap resamples."""
    random_method_prefix: str = "random"
    """Methods whose name starts with this are random pruning themselves: R9 does not apply."""
    resolution: float | None = None
    """Accuracy of one test image (1/N for N test images), the floor of every spread: runs that agree
    to the image are not exact. None: read from each track's reproduced accuracies (multiples of 1/N)."""
    fallback_resolution: float = 1e-4
    """The floor where a track's accuracies show no grid of 1/N (N up to a million): one image in 10,000."""
    references: tuple[str, ...] | None = None
    """The reference methods, in order: each method's family holds its comparisons with the references
    before it (every other method comes after them all, compared with the references only). None: the
    track's leaderboard protocol's references (a track without one: its grid's methods; a track not
    defined here: every method, by name)."""
    seed: int = 0
    """The audit seed: every bootstrap and sampled permutation derives from it and from the cell or
    comparison it belongs to. Reported on its own (``seed`` in ``audit.json``), not among the thresholds."""

    def __post_init__(self) -> None:
        for name in ("alpha", "power", "confidence"):
            if not 0 < getattr(self, name) < 1:
                raise BenchError(f"audit setting {name} must lie strictly between 0 and 1 (got {getattr(self, name)})")
        for name in ("budget_tolerance", "macs_tolerance", "sparsity_tolerance", "dense_tolerance",
                     "equivalence_margin", "reported_gap_tolerance"):
            if not getattr(self, name) > 0:
                raise BenchError(f"audit setting {name} must be positive (got {getattr(self, name)})")
        for name in ("resolution", "fallback_resolution"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise BenchError(f"audit setting {name} must lie strictly between 0 and 1 (got {value}); "
                                 "pass 1/N for N test images")
        if not 1 <= self.min_seeds <= self.recommended_seeds:
            raise BenchError(
                f"audit settings need 1 <= min_seeds <= recommended_seeds (got {self.min_seeds}, "
                f"{self.recommended_seeds})"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise BenchError(f"audit setting seed must be an integer (got {self.seed!r})")
        if self.references is not None:
            object.__setattr__(self, "references", tuple(self.references))
        if self.n_resamples < 1:
            raise BenchError(f"audit setting n_resamples must be a positive integer (got {self.n_resamples})")

    @property
    def claim_level(self) -> float:
        """The one-sided level of every claim, whatever its kind ("beats", "no-loss", across tracks): a
        claim is supported when its interval at ``1 - alpha`` (two-sided) lies on the claimed side."""
        return self.alpha / 2

    def as_dict(self) -> dict[str, float | int | str]:
        """The thresholds (the seed is reported beside them)."""
        thresholds = asdict(self)
        del thresholds["seed"]
        return thresholds
