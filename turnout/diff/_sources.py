"""Where the two sides of a diff come from: a directory, or the policy directory as it
was at a git revision (read with `git archive`, in memory, no checkout)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

__all__ = ["DiffSourceError", "revision_sources"]

_SUFFIXES = (".yaml", ".yml")


class DiffSourceError(Exception):
    """A side of the diff could not be read (no git repository, unknown revision, ...)."""


def revision_sources(directory: Path, revision: str) -> dict[str, str]:
    """{`REV:path/in/repo.yaml`: text} of the policy files under `directory` (a
    directory in a git work tree) as they were at `revision`, chosen as the loader
    chooses them (*.yaml / *.yml, hidden files and directories skipped)."""
    if not directory.is_dir():
        raise DiffSourceError(f"{directory} is not a directory")
    top = Path(_git(directory, "rev-parse", "--show-toplevel").decode().strip())
    prefix = _git(directory, "rev-parse", "--show-prefix").decode().strip()
    commit = f"{revision}^{{commit}}"
    try:
        _git(top, "rev-parse", "--verify", "--quiet", commit)
    except DiffSourceError as exc:  # git missing or stuck says so in the cause
        raise DiffSourceError(f'unknown git revision "{revision}"') from exc
    paths = [prefix] if prefix else []
    try:
        archive = _git(top, "archive", "--format=tar", commit, "--", *paths)
    except DiffSourceError as exc:
        raise DiffSourceError(f"{prefix or '.'} does not exist at {revision} ({exc})") from exc
    sources: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not _is_policy_file(member.name, prefix):
                continue
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            name = f"{revision}:{member.name}"
            try:
                sources[name] = extracted.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DiffSourceError(f"cannot read {name}: {exc}") from exc
    return dict(sorted(sources.items()))


def _is_policy_file(name: str, prefix: str) -> bool:
    path = PurePosixPath(name)
    parts = path.relative_to(prefix).parts if prefix else path.parts
    return (
        bool(parts)
        and not any(part.startswith(".") for part in parts)
        and parts[-1].endswith(_SUFFIXES)
    )


def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiffSourceError(f"git {args[0]}: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise DiffSourceError(f"{cwd} is not in a git repository")
        raise DiffSourceError(f"git {args[0]} failed: {message}")
    return done.stdout
