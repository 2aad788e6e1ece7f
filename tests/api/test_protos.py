"""The committed turnout/_proto is exactly what `make protos` generates from protos/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "turnout" / "_proto"

# The generator stamps its own version (and the runtime floors that follow from it)
# into the code; a newer grpcio-tools must not read as a hand edit.
_STAMPS = [
    (re.compile(r"# Protobuf Python Version: .*"), "# Protobuf Python Version: X"),
    (re.compile(r"GRPC_GENERATED_VERSION = '[^']*'"), "GRPC_GENERATED_VERSION = 'X'"),
    (
        re.compile(r"(ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,)[^']*"),
        r"\1 X, ",
    ),
]


def _normalized(text: str) -> str:
    for pattern, replacement in _STAMPS:
        text = pattern.sub(replacement, text)
    return text


def _files(base: Path) -> dict[str, str]:
    return {
        str(p.relative_to(base)): p.read_text()
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_regenerating_the_protos_gives_the_committed_files(tmp_path: Path) -> None:
    """protos/generate.py (what `make protos` runs) reproduces every committed file,
    so nobody edits generated code by hand or forgets to regenerate."""
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = _files(tmp_path / "turnout" / "_proto")
    committed = _files(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run `make protos` and commit turnout/_proto"
    for name, text in fresh.items():
        assert _normalized(committed[name]) == _normalized(text), (
            f"turnout/_proto/{name} differs from what protos/ generates: run `make protos`"
        )


def test_the_makefile_generates_with_the_same_script() -> None:
    """`make protos` runs protos/generate.py, the script the test above checks."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nprotos:", 1)[1].split("\n\n", 1)[0]
    assert "protos/generate.py" in recipe


def test_a_hand_edit_is_caught() -> None:
    """The comparison does see a change outside the version stamps."""
    original = (COMMITTED / "v1" / "release_pb2.py").read_text()
    edited = original.replace("DESCRIPTOR", "DESCRIPTOR_", 1)
    assert _normalized(edited) != _normalized(original)
    assert _normalized(original.replace("7,", "8,", 1)) == _normalized(original)
