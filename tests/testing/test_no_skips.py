"""The suite's rule that a skip is a failure (tests/conftest.py), and require_tool's
message for a missing command (tests/system_tools.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def test_any_skip_fails_the_run_with_its_reason(pytester: pytest.Pytester) -> None:
    """pytest.skip in a test or a fixture, a skip mark and a module-level importorskip
    each fail the run, their reasons shown; an expected failure stays one."""
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(
        test_skips="""
        import pytest

        @pytest.fixture
        def tool():
            pytest.skip("no frobnicator in the fixture")

        def test_in_body():
            pytest.skip("no frobnicator in the body")

        def test_in_fixture(tool):
            pass

        @pytest.mark.skip(reason="marked away")
        def test_marked():
            pass

        @pytest.mark.xfail(reason="known")
        def test_expected_failure():
            assert False

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)  # setup: errors
    result.stdout.fnmatch_lines(["*no frobnicator in the body*", "*never skip*"])
    assert "no frobnicator in the fixture" in result.stdout.str()
    assert "marked away" in result.stdout.str()

    pytester.makepyfile(
        test_skips="""
        import pytest
        pytest.importorskip("no_such_module_anywhere")

        def test_never_collected():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no_such_module_anywhere*", "*never skip*"])


def test_a_missing_tool_fails_naming_its_package_and_install_command(
    pytester: pytest.Pytester,
) -> None:
    """require_tool of a listed Debian command that is missing fails the test with the
    package, what needs it and `make system`; an unlisted one points at `make setup`."""
    pytester.syspathinsert(TESTS)
    pytester.makepyfile(
        test_tool="""
        import system_tools

        def test_listed(monkeypatch):
            monkeypatch.setattr(system_tools, "find_tool", lambda command: None)
            system_tools.require_tool("hey")

        def test_unlisted(monkeypatch):
            monkeypatch.setattr(system_tools, "find_tool", lambda command: None)
            system_tools.require_tool("kubectl")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*`hey` is not installed: the chaos tests' steady load through Envoy need(s) "
            "Debian's hey package. `make system` installs it (as root: apt-get install hey).*",
            "*`kubectl` is not installed: `make setup` installs it*",
        ]
    )


def test_every_listed_package_is_installed_here() -> None:
    """Every command .ci/system-packages.txt lists is found on this machine (make system
    ran): the list and the machine agree."""
    import system_tools

    missing = [c for c in system_tools.debian_packages() if system_tools.find_tool(c) is None]
    assert not missing, f"run `make system`: missing {missing}"
