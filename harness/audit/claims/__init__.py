"""Claims: what someone says about pruning methods, judged against the records.

:mod:`~harness.audit.claims.schema` reads and validates claims files, :mod:`~harness.audit.claims.matching`
finds the cells a claim covers, :mod:`~harness.audit.claims.judging` tests it and gives the verdict.
"""

from harness.audit.claims.judging import (
    ClaimTest,
    ClaimVerdict,
    NoLossResult,
    judge,
    prepare_claims,
    related_findings,
)
from harness.audit.claims.matching import Setting
from harness.audit.claims.schema import ALL_TRACKS, Claim, check_names, claim_records, load_claims

__all__ = [
    "ALL_TRACKS", "Claim", "check_names", "ClaimTest", "ClaimVerdict", "NoLossResult", "Setting", "claim_records", "judge",
    "load_claims", "prepare_claims", "related_findings",
]
