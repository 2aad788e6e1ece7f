"""The policy directory's files: read them as the loader does, write them atomically,
show a change as a unified diff, and commit it with git."""

from __future__ import annotations

import contextlib
import difflib
import os
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import EditError, GitError

_SUFFIXES = (".yaml", ".yml")


def policy_files(directory: Path) -> dict[str, str]:
    """{name: text} of every *.yaml / *.yml file under `directory` (hidden files and
    directories skipped), named as the loader names them (`DIR/sub/file.yaml`), so
    problems read the same as `turnout validate`'s. Line endings are kept as written."""
    if not directory.is_dir():
        raise EditError(f"{directory} is not a directory")
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or not name.endswith(_SUFFIXES):
                continue
            path = Path(dirpath) / name
            try:
                found[str(path)] = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise EditError(f"cannot read {path}: {exc}") from exc
    return dict(sorted(found.items()))


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file's text before and after an edit."""

    path: Path
    old: str
    new: str

    def diff(self) -> str:
        """A unified diff of the change (`a/FILE` -> `b/FILE`)."""
        return "".join(
            difflib.unified_diff(
                self.old.splitlines(keepends=True),
                self.new.splitlines(keepends=True),
                fromfile=f"a/{str(self.path).lstrip('/')}",
                tofile=f"b/{str(self.path).lstrip('/')}",
            )
        )


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one rename: a hidden temp file in the same directory (so the
    loader and watchers never read it half written), fsynced, given the file's mode,
    renamed over the file, then the directory fsynced so the rename survives a crash."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def git_root(directory: Path) -> Path:
    """The top of the git work tree holding `directory`; GitError when there is none."""
    try:
        top = _git(directory, "rev-parse", "--show-toplevel")
    except GitError as exc:
        raise GitError(
            f"--commit needs a git repository, and {directory} is not in one ({exc})"
        ) from exc
    return Path(top.strip())


def commit(directory: Path, paths: Sequence[Path], message: str) -> str:
    """Commit exactly `paths` (whatever else is staged stays staged, uncommitted) with
    `message`; returns the new commit's short hash."""
    root = git_root(directory)
    names = [str(Path(p).resolve()) for p in paths]
    _git(root, "add", "--", *names)
    _git(root, "commit", "--quiet", "--message", message, "--only", "--", *names)
    return _git(root, "rev-parse", "--short", "HEAD").strip()


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]}: {exc}") from exc
    if done.returncode != 0:
        raise GitError(f"git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout
