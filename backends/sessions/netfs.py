"""Is a path on a network filesystem? SQLite's WAL needs shared memory that only one host sees.

Read from /proc/self/mountinfo: the mount whose mount point is the longest prefix of the
path decides. Parsing is separate from reading so it can be checked against any table.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Filesystem types whose files other hosts can open at the same time.
NETWORK_FSTYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph",
     "glusterfs", "fuse.glusterfs", "fuse.sshfs", "sshfs", "lustre", "gpfs", "ocfs2", "gfs2",
     "beegfs", "fuse.s3fs", "davfs", "fuse.davfs2", "fuse.rclone"}
)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def fstype_of(path: str, mountinfo: str) -> str | None:
    """The filesystem type of the mount holding ``path`` (absolute, resolved), per ``mountinfo``."""
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        fields = before.split()
        if not sep or len(fields) < 5 or not after.split():
            continue
        mount_point = _unescape(fields[4])
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), after.split()[0])
    return None if best is None else best[1]


def network_fstype(path: Path) -> str | None:
    """The network filesystem type ``path`` lives on, or None when it is local (or unknown)."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    fstype = fstype_of(os.path.realpath(path), mountinfo)
    return fstype if fstype in NETWORK_FSTYPES else None
