"""Tests share set-up through conftest.py fixtures and the tests/support package, never by importing each other.

A test module that imports another test module (or a conftest) couples two files: a change to one breaks the
other. ``KNOWN`` lists the imports still waiting to move into tests/support; it may only shrink."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

# (importing file, imported test module) pairs left from before tests/support existed: move the helper into
# tests/support/ and delete the line. A new pair fails the test, and so does a line that no longer applies.
KNOWN: set[tuple[str, str]] = set()


def imported_modules(path: Path) -> set[str]:
    """Every ``tests.…`` module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                found.add("." * node.level + (node.module or ""))
            elif node.module and node.module.split(".")[0] == "tests":
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if a.name.startswith("test_"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "tests")
    return found


def forbidden(module: str) -> bool:
    """Anything under tests/ that is not the support package: test modules, conftests, relative imports."""
    if module.startswith("."):
        return True
    parts = module.split(".")
    return parts[:2] != ["tests", "support"] and (parts[-1].startswith("test_") or parts[-1] == "conftest")


def offenders() -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for path in sorted(TESTS.rglob("*.py")):
        for module in imported_modules(path):
            if forbidden(module):
                pairs.add((path.relative_to(TESTS).as_posix(), module))
    return pairs


def test_no_test_module_imports_another_test_module_or_a_conftest() -> None:
    new = offenders() - KNOWN
    assert not new, f"share these through a fixture (conftest.py) or tests/support/, not by import: {sorted(new)}"


def test_the_known_list_only_shrinks() -> None:
    gone = KNOWN - offenders()
    assert not gone, f"these imports are gone: delete them from KNOWN: {sorted(gone)}"


def test_no_support_modules_beside_tests_and_one_fake_adyen() -> None:
    beside = [p.relative_to(TESTS).as_posix() for p in TESTS.rglob("*_support.py")]
    assert not beside, f"helpers belong in tests/support/: {beside}"
    assert not (TESTS / "fakes").exists(), "the fake Adyen has one home: tahsil_local/fake_adyen.py"


def test_the_checker_sees_what_it_must() -> None:
    assert forbidden("tests.unit.test_payments") and forbidden("tests.conftest") and forbidden(".helpers")
    assert forbidden("tests.integration.conftest")
    assert not forbidden("tests.support.lambdas") and not forbidden("tahsil.payments")
