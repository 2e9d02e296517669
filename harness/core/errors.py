"""One exception type for every mistake a user can fix.

The CLI prints its message as a single line and exits non-zero; library callers can
catch it. Messages name the problem and the fix.
"""


class BenchError(Exception):
    """A user-fixable problem: bad input, missing data, an invalid plan."""

    exit_code = 2


import errno as _errno

STORAGE_ERRNOS = frozenset({_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS, _errno.EACCES, _errno.EPERM,
                            _errno.ENOTDIR, _errno.EEXIST, _errno.EISDIR})
"""File-system refusals a user fixes by freeing space or choosing another folder."""


class StorageError(BenchError):
    """The file system refused a write or a folder: full, read-only, not permitted, or not a folder."""


def storage_error(exc: OSError, path: object = None) -> StorageError:
    """One line naming the path, what the file system said, and the fix, for an ``OSError`` from a write."""
    errno = _errno
    where = path if path is not None else exc.filename or "the results folder"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        text = (f"no space left on device at {where}; free some space there (or point --results elsewhere) "
                "and rerun: every finished run's record is saved")
    elif code == errno.EROFS:
        text = f"{where} is on a read-only file system; point --results at a writable folder"
    elif code in (errno.EACCES, errno.EPERM):
        text = f"permission denied writing {where}; make it writable or point --results elsewhere"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        text = f"{where}: a file stands where a folder is needed; move it or point --results elsewhere"
    else:
        text = f"cannot write {where}: {exc.strerror or exc}"
    return StorageError(text)
