"""Submitting a method to the leaderboard: the policy it must satisfy, the protocol that runs it, and the
verdict it gets."""

from harness.protocols.submit.policy import (
           MIN_SEEDS,
           applicable_targets,
           equal_tuning,
           submission_seeds,
)
from harness.protocols.submit.protocol import (
           Execution,
           SubmissionPlan,
           plan,
           submit,
           submit_track,
)
from harness.protocols.submit.verdict import (
           Submission,
           TrackSubmission,
           VerdictRow,
           Versus,
           method_findings,
           verdict_rows,
)

__all__ = ["MIN_SEEDS", "applicable_targets", "equal_tuning", "submission_seeds", "submit", "submit_track",
           "Execution", "SubmissionPlan", "plan", "Submission", "TrackSubmission", "VerdictRow", "Versus", "method_findings", "verdict_rows"]
