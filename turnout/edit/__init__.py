"""Edits that keep the file a person wrote: change release values in policy files in
place (comments, key order, quoting and layout untouched), validate the whole resulting
set before writing, write atomically, optionally commit with git.

    edit = set_traffic(Path("policies"), "checkout", parse_shares(["v1=90", "v2=10"]))
    print(edit.diff())        # what would change (`--dry-run`)
    edit.write()              # temp file + fsync + rename, keeping the file's mode
    commit(Path("policies"), edit.paths, edit.message)

`promote`, `rollback`, `pause`, `resume` and `approve` work the same way; `set_release` is the
release driver's step (traffic, stable and `incremental.state` in one compare-and-swap
write). Every refusal is an
`EditError` whose message says why; nothing is written when one is raised.
"""

from __future__ import annotations

from ._edits import (
    Edit,
    approve,
    parse_shares,
    pause,
    promote,
    resume,
    rollback,
    set_traffic,
)
from ._errors import EditError, GitError, InvalidSetError, NotFoundError, PhaseError
from ._files import FileChange, commit, git_root, policy_files, write_atomically
from ._release import ConflictError, set_release, write_if_unchanged

__all__ = [
    "ConflictError",
    "Edit",
    "EditError",
    "FileChange",
    "GitError",
    "InvalidSetError",
    "NotFoundError",
    "PhaseError",
    "approve",
    "commit",
    "git_root",
    "parse_shares",
    "pause",
    "policy_files",
    "promote",
    "resume",
    "rollback",
    "set_release",
    "set_traffic",
    "write_atomically",
    "write_if_unchanged",
]
