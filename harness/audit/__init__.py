"""The audit: statistics across seeds, the fairness rules R1-R15, claims and reported numbers.

Entry points are :func:`audit` (records in memory) and :func:`audit_results` (a results
directory); both return an :class:`AuditResult` that the report and the leaderboard render.
"""

from harness.audit.claims import Claim, ClaimVerdict, load_claims
from harness.audit.comparisons import Cell, Comparison
from harness.audit.config import AuditConfig
from harness.audit.engine import AuditResult, audit, audit_results
from harness.audit.findings import RULES, Finding
from harness.audit.reported import import_reported, load_reported

__all__ = [
    "AuditConfig", "AuditResult", "Cell", "Claim", "ClaimVerdict", "Comparison", "Finding", "RULES", "audit",
    "audit_results", "import_reported", "load_claims", "load_reported",
]
