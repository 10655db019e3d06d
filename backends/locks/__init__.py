"""Sync and lock files: which locks exist, who holds them, which are stale, and breaking them safely.

Lock files are found (files), matched with the kernel's locks (proc) and their holders
(holders, pidfile, sidecar), and judged (judge); watched git repositories get their
hazards (git_hazards). ``breaking`` breaks a stale lock and ``stop`` stops its holder,
both re-verified at the moment of acting; ``wrapper`` is ``opsconsole lock NAME -- CMD``,
a kernel lock that cannot go stale. DESIGN.md "The collector contract" and "Actions". The names
below are what panels/, console/ and the other resources may use.
"""

from typing import TYPE_CHECKING

from backends.face import lazy_face

if TYPE_CHECKING:
    from backends.locks.breaking import BreakLock
    from backends.locks.collect import judge_path, make_locks_collect
    from backends.locks.model import Holder, LockEntry, LocksValue, LockVerdict, RepoHazards
    from backends.locks.proc import read_kernel_locks
    from backends.locks.stop import StopLockHolder
    from backends.locks.wrapper import (
        EXIT_BUSY,
        EXIT_NOT_EXECUTABLE,
        EXIT_NOT_FOUND,
        LockBusy,
        LockNameError,
        acquire,
        ensure_directory,
        holding,
        lock_file,
        run_command,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__)
