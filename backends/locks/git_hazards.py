"""Git sync hazards of a repository: what can lose or overwrite another job's update.

A merge, rebase, cherry-pick or revert left in progress, unmerged paths, stashes (each
an update set aside that may never come back), and commits ahead of or behind the
upstream as last fetched. git runs as an asyncio subprocess with a timeout, never
fetches, and never takes a lock: ``--no-optional-locks`` keeps ``git status`` from
writing the index, so looking cannot collide with the jobs being looked at; an fsmonitor
hook configured in the repository is switched off for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from backends.locks.model import RepoHazards, StashEntry

#: Longest any one git command may run.
GIT_TIMEOUT_S = 5.0

_GIT = ("git", "--no-optional-locks", "-c", "core.fsmonitor=false")
_ENV = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
_FIELD = "\x1f"

#: Files in the git directory that mean an operation stopped half-way, checked in order.
IN_PROGRESS_MARKERS: tuple[tuple[str, str], ...] = (
    ("rebase-merge", "rebase"),
    ("rebase-apply/applying", "am"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("BISECT_LOG", "bisect"),
)


class GitError(Exception):
    """git could not answer; the message is one line for the panel."""


async def run_git(repo: Path, *args: str, timeout_s: float = GIT_TIMEOUT_S) -> str:
    """git's stdout for one command in ``repo``; GitError on failure or timeout (the process is killed)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *_GIT, "-C", str(repo), *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **_ENV},
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):  # it finished just as time ran out
            process.kill()
        await asyncio.shield(process.wait())
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise GitError(f"git {args[0]} timed out after {timeout_s:g} s") from None
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        message = lines[0] if lines else f"git {args[0]} exited with {process.returncode}"
        raise GitError(message.removeprefix("fatal: "))
    return stdout.decode(errors="replace")


def in_progress(git_dir: Path) -> str | None:
    """The operation stopped half-way in this git directory, if any."""
    for marker, operation in IN_PROGRESS_MARKERS:
        if (git_dir / marker).exists():
            return operation
    return None


def parse_status(text: str) -> tuple[str | None, int, int | None, int | None]:
    """From ``git status --porcelain=v2 --branch -z``: branch, unmerged count, ahead, behind."""
    branch: str | None = None
    ahead = behind = None
    unmerged = 0
    for record in text.split("\0"):
        if record.startswith("# branch.head "):
            head = record.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif record.startswith("# branch.ab "):
            plus, minus = record.removeprefix("# branch.ab ").split()
            ahead, behind = int(plus), -int(minus)
        elif record.startswith("u "):
            unmerged += 1
    return branch, unmerged, ahead, behind


def parse_stashes(text: str) -> tuple[StashEntry, ...]:
    """From ``git stash list --format=%gd<US>%ct<US>%gs``."""
    entries = []
    for line in text.splitlines():
        ref, _, rest = line.partition(_FIELD)
        when, _, message = rest.partition(_FIELD)
        entries.append(StashEntry(ref, message, float(when) if when.isdigit() else None))
    return tuple(entries)


def parse_track(text: str) -> tuple[str | None, int | None, int | None]:
    """From ``for-each-ref --format=%(upstream:short)<US>%(upstream:track,nobracket)``."""
    upstream, _, track = text.strip().partition(_FIELD)
    if not upstream:
        return None, None, None
    counts = {"ahead": 0, "behind": 0}
    for part in track.split(","):
        word, _, number = part.strip().partition(" ")
        if word in counts and number.isdigit():
            counts[word] = int(number)
    return upstream, counts["ahead"], counts["behind"]


async def _rebased_branch(git_dir: Path) -> str | None:
    """During a rebase HEAD is detached: the branch being rebased, from the rebase state."""
    for state in ("rebase-merge", "rebase-apply"):
        try:
            head = await asyncio.to_thread((git_dir / state / "head-name").read_text)
        except OSError:
            continue
        return head.strip().removeprefix("refs/heads/") or None
    return None


async def repo_hazards(repo: Path, *, timeout_s: float = GIT_TIMEOUT_S) -> RepoHazards:
    """Everything the panel shows about one repository; git's failures go in ``error``."""
    path = str(repo)
    try:
        git_dir_text, status, stashes = await asyncio.gather(
            run_git(repo, "rev-parse", "--absolute-git-dir", timeout_s=timeout_s),
            run_git(repo, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=no",
                    "--ignore-submodules=all", timeout_s=timeout_s),
            run_git(repo, "stash", "list", f"--format=%gd{_FIELD}%ct{_FIELD}%gs", timeout_s=timeout_s),
        )
        git_dir = Path(git_dir_text.strip())
        operation = await asyncio.to_thread(in_progress, git_dir)
        branch, unmerged, ahead, behind = parse_status(status)
        upstream = None
        if branch is None and operation in ("rebase", "am"):
            branch = await _rebased_branch(git_dir)
        if branch is not None:
            track = await run_git(
                repo, "for-each-ref", f"--format=%(upstream:short){_FIELD}%(upstream:track,nobracket)",
                f"refs/heads/{branch}", timeout_s=timeout_s,
            )
            upstream, ahead, behind = parse_track(track)
    except GitError as exc:
        return RepoHazards(path=path, stashes=0, unmerged=0, in_progress=None, ahead=None, behind=None,
                           error=str(exc))
    entries = parse_stashes(stashes)
    return RepoHazards(
        path=path, stashes=len(entries), unmerged=unmerged, in_progress=operation, ahead=ahead,
        behind=behind, branch=branch, upstream=upstream, stash_entries=entries,
    )
