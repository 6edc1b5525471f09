"""Writing a file so that nothing at its name ever looks complete but is not.

The compile cache (its entries) and ``extism-fast batch`` (its JSON Lines and Parquet outputs)
write through :func:`replaced_on_success`: the bytes go to a new file beside the target, which
takes the target's name only once everything was written and closed. A write that fails (disk
full, file-size limit, an error or Ctrl-C part-way) leaves the target as it was, and the new file
is removed or kept under another name that says it is partial.
"""

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO, Optional

__all__ = ["replaced_on_success"]

_NAME_MAX = 255  # a file name's length limit on Linux filesystems


def _temporary_name(path: str) -> str:
    directory, name = os.path.split(path)
    suffix = f".{os.urandom(4).hex()}.tmp"  # what secrets.token_hex does, without importing random
    return os.path.join(directory, "." + name[: _NAME_MAX - len(suffix) - 1] + suffix)


@contextlib.contextmanager
def replaced_on_success(path: str, *, file_mode: int = 0o666, partial: Optional[str] = None,
                        on_partial: Optional[Callable[[str], None]] = None) -> Iterator[BinaryIO]:
    """A new file beside ``path`` (created with ``file_mode``, less the umask), open for binary
    writing; when the block ends normally it is closed and renamed to ``path`` (atomically).

    When the block (or closing, or renaming) raises, the exception goes on and the new file is
    renamed to ``partial`` when given (then ``on_partial(partial)`` is called), else removed.
    OSError when the new file cannot be created (the message names the temporary file)."""
    temporary = _temporary_name(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, file_mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        _put_aside(temporary, partial, on_partial)
        raise


def _put_aside(temporary: str, partial: Optional[str], on_partial: Optional[Callable[[str], None]]) -> None:
    if partial is not None:
        try:
            os.replace(temporary, partial)
        except OSError:
            pass  # removed below
        else:
            if on_partial is not None:
                on_partial(partial)
            return
    with contextlib.suppress(OSError):
        os.unlink(temporary)
