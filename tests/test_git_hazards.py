"""Git sync hazards on real repositories built with git: stashes, conflicts, ahead/behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backends.locks.git_hazards import (
    GitError,
    parse_status,
    parse_track,
    repo_hazards,
    run_git,
)

GIT_ENV = {
    **os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_EDITOR": "true",
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=GIT_ENV, check=check,
                          capture_output=True)


def commit(repo: Path, name: str, text: str, message: str) -> None:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """``repo`` tracking ``origin``, and ``other``, a second clone that pushes to it."""
    origin, repo, other = tmp_path / "origin.git", tmp_path / "repo", tmp_path / "other"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "init", "-q", str(repo))
    commit(repo, "status.json", "start\n", "initial")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "-u", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), str(other))
    return repo, other


async def test_clean_repository_has_no_hazards(repos):
    repo, _ = repos
    hazards = await repo_hazards(repo)
    assert (hazards.stashes, hazards.unmerged, hazards.in_progress, hazards.ahead, hazards.behind) == (0, 0, None, 0, 0)
    assert hazards.branch == "main" and hazards.upstream == "origin/main" and hazards.hazards == ()


async def test_stashes_are_counted_with_message_and_age(repos):
    repo, _ = repos
    for text in ("a\n", "b\n"):
        (repo / "status.json").write_text(text)
        git(repo, "stash", "push", "-q", "-m", f"sync set aside {text.strip()}")
    hazards = await repo_hazards(repo)
    assert hazards.stashes == 2
    assert [entry.ref for entry in hazards.stash_entries] == ["stash@{0}", "stash@{1}"]
    assert "sync set aside b" in hazards.stash_entries[0].message
    assert all(entry.created_at for entry in hazards.stash_entries)
    assert "2 stashes" in hazards.hazards


async def test_ahead_and_behind_without_fetching(repos):
    repo, other = repos
    commit(other, "status.json", "other\n", "other job")
    git(other, "push", "-q", "origin", "main")
    commit(repo, "mine.json", "mine\n", "my job")
    before = await repo_hazards(repo)
    assert (before.ahead, before.behind) == (1, 0)  # not fetched: the remote commit is not known yet
    git(repo, "fetch", "-q")
    after = await repo_hazards(repo)
    assert (after.ahead, after.behind) == (1, 1)


async def test_merge_conflict_in_progress_with_unmerged_paths(repos):
    repo, other = repos
    commit(other, "status.json", "theirs\n", "theirs")
    git(other, "push", "-q", "origin", "main")
    commit(repo, "status.json", "ours\n", "ours")
    git(repo, "pull", "-q", "--no-rebase", "origin", "main", check=False)
    hazards = await repo_hazards(repo)
    assert (hazards.in_progress, hazards.unmerged) == ("merge", 1)


async def test_rebase_in_progress_still_reports_the_branch_upstream(repos):
    repo, other = repos
    commit(other, "status.json", "theirs\n", "theirs")
    git(other, "push", "-q", "origin", "main")
    commit(repo, "status.json", "ours\n", "ours")
    git(repo, "fetch", "-q")
    git(repo, "rebase", "origin/main", check=False)
    hazards = await repo_hazards(repo)
    assert (hazards.in_progress, hazards.unmerged, hazards.branch) == ("rebase", 1, "main")
    assert (hazards.ahead, hazards.behind) == (1, 1)


async def test_cherry_pick_and_revert_in_progress(repos):
    repo, _ = repos
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, "status.json", "side\n", "side")
    git(repo, "checkout", "-q", "main")
    commit(repo, "status.json", "main\n", "main")
    git(repo, "cherry-pick", "side", check=False)
    assert (await repo_hazards(repo)).in_progress == "cherry-pick"
    git(repo, "cherry-pick", "--abort")
    commit(repo, "status.json", "main2\n", "main2")
    git(repo, "revert", "--no-edit", "HEAD~1", check=False)
    assert (await repo_hazards(repo)).in_progress == "revert"


async def test_looking_takes_no_lock_and_writes_nothing(repos):
    repo, _ = repos
    (repo / "status.json").write_text("changed\n")  # a stat-dirty index that plain `git status` would refresh
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    await repo_hazards(repo)
    assert index.stat().st_mtime_ns == before and not (repo / ".git" / "index.lock").exists()


async def test_not_a_repository_is_an_error_not_a_crash(tmp_path):
    for path in (tmp_path, tmp_path / "missing"):
        hazards = await repo_hazards(path)
        assert hazards.error and hazards.stashes == 0 and hazards.hazards[0].startswith("error")


async def test_git_that_runs_too_long_is_killed(repos):
    repo, _ = repos
    with pytest.raises(GitError, match="timed out"):
        await run_git(repo, "log", timeout_s=0.0)


def test_status_and_track_parsing():
    text = "# branch.oid abc\0# branch.head main\0# branch.upstream origin/main\0# branch.ab +3 -2\0u UU N...\0"
    assert parse_status(text) == ("main", 1, 3, 2)
    assert parse_status("# branch.head (detached)\0") == (None, 0, None, None)
    assert parse_track("origin/main\x1fahead 2, behind 5\n") == ("origin/main", 2, 5)
    assert parse_track("origin/main\x1f\n") == ("origin/main", 0, 0)
    assert parse_track("\x1f\n") == (None, None, None)
