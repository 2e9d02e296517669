"""One exception type for every mistake a user can fix.

The CLI prints its message as a single line and exits non-zero; library callers can
catch it. Messages name the problem and the fix.
"""


class BenchError(Exception):
    """A user-fixable problem: bad input, missing data, an invalid plan."""

    exit_code = 2
