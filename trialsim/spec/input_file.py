"""Read a user's input file safely: regular files only, never blocking, never more than a size limit.

The limit is :data:`DEFAULT_MAX_INPUT_BYTES` (1 MiB; a real scenario or plan file is a few KB) unless the
environment variable ``TRIALSIM_MAX_INPUT_BYTES`` sets another whole number of bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from trialsim.exceptions import Problem, ScenarioError

DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
LIMIT_VARIABLE = "TRIALSIM_MAX_INPUT_BYTES"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def max_input_bytes() -> int:
    """The size limit of an input file in bytes: ``TRIALSIM_MAX_INPUT_BYTES`` or the 1 MiB default."""
    given = os.environ.get(LIMIT_VARIABLE)
    if given is None:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        limit = int(given)
    except ValueError:
        limit = 0
    if limit < 1:
        message = "must be a positive whole number of bytes"
        raise ScenarioError(Problem(f"environment variable {LIMIT_VARIABLE}", "", message, given, True))
    return limit


def _require_regular(name: str, mode: int) -> None:
    """Raise a :class:`ScenarioError` saying what ``name`` is (a directory, a FIFO, ...) unless it is a regular file."""
    if not stat.S_ISREG(mode):
        kind = next((kind for test, kind in _KINDS if test(mode)), "a special file")
        raise ScenarioError(Problem(name, "", f"is {kind}, not a regular file; give a YAML file"))


def _unreadable(name: str, error: OSError | ValueError) -> ScenarioError:
    if isinstance(error, FileNotFoundError):
        return ScenarioError(Problem(name, "", "file not found"))
    return ScenarioError(Problem(name, "", f"cannot be read: {getattr(error, 'strerror', None) or error}"))


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``, or a :class:`ScenarioError` naming the file.

    Refuses anything that is not a regular file before opening it for reading (the file is opened non-blocking and
    checked again on the open descriptor, so a FIFO swapped in between cannot block), and reads at most the
    limit + 1 bytes, so ``/dev/zero`` or a huge file costs no more than the limit in memory.
    """
    name, limit = str(path), max_input_bytes()
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise _unreadable(name, error) from None
    _require_regular(name, mode)
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = file.read(limit + 1) if stat.S_ISREG(mode) else b""
    except OSError as error:
        raise _unreadable(name, error) from None
    _require_regular(name, mode)
    if len(data) > limit:
        raise ScenarioError(
            Problem(
                name,
                "",
                f"is larger than {limit:,} bytes, the limit for an input file "
                f"(set {LIMIT_VARIABLE} to raise it); a scenario or plan file is a few KB",
            )
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(Problem(name, "", f"is not UTF-8 text (byte {error.start} cannot be decoded)")) from None
