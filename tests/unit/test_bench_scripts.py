"""`make bench` as a check: the bench scripts form no import cycle, and a failed target anywhere in the report
(per-endpoint, scale and cost, local runtime) makes `scripts/bench.py` exit non-zero."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from scripts import bench, bench_scale

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _imported_scripts(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "scripts":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scripts."):
            names.add(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("scripts.")}
    return names


def test_the_bench_scripts_import_no_cycle() -> None:
    graph = {p.stem: _imported_scripts(p) for p in SCRIPTS.glob("bench*.py")}
    assert "bench" not in graph["bench_scale"] and "bench" not in graph["bench_runtime"]
    assert graph["benchlib"] <= set()  # the shared module imports no bench script

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [name for name in graph if reaches(name, name, set())] == []


def _fake_run(monkeypatch: pytest.MonkeyPatch, scale_failures: list[str], depth: int = 4) -> None:
    def run_inprocess(n: int) -> Any:
        snap = bench.Snapshot(ddb_ops=["GetItem(Credentials KEY#…)"] * depth, other_ops=[], attempts=depth,
                              depth=depth, depth_all=depth, parallel=[], aws_ms=1.0)
        results = [bench.Result(label, logical_id, counted=snap) for label, logical_id, _ in bench.ENDPOINTS]
        return results, [], {"payments": 0, "transactions": 0}

    def cold_imports(results: list[Any], runs: int) -> None:
        for r in results:
            r.import_ms, r.import_runs = 100.0, [100.0]

    monkeypatch.setattr(bench, "run_inprocess", run_inprocess)
    monkeypatch.setattr(bench, "cold_imports", cold_imports)
    monkeypatch.setattr(bench, "import_breakdown", lambda logical_id: [])
    monkeypatch.setattr(bench_scale, "report", lambda n, runs: ("scale report", list(scale_failures)))


def test_bench_exits_zero_when_every_target_is_met(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _fake_run(monkeypatch, [])
    assert bench.main(["--n", "1", "--skip-runtime"]) == 0
    assert "OK:" in capsys.readouterr().out


def test_a_failed_scale_target_makes_the_bench_exit_non_zero(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _fake_run(monkeypatch, ["a million payments cost $40.00 (target <= $35)"])
    assert bench.main(["--n", "1", "--skip-runtime"]) == 1
    out = capsys.readouterr().out
    assert "FAIL:" in out and "a million payments cost $40.00" in out


def test_a_failed_endpoint_target_makes_the_bench_exit_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_run(monkeypatch, [], depth=6)
    assert bench.main(["--n", "1", "--skip-runtime"]) == 1


def test_a_failed_local_runtime_target_makes_the_bench_exit_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import bench_runtime

    class Report:
        def text(self) -> str:
            return "runtime report"

        def failures(self) -> list[str]:
            return ["12.5 authorizations/s sustained (target >= 20)"]

    _fake_run(monkeypatch, [])
    monkeypatch.setattr(bench_runtime, "run", lambda seconds: Report())
    assert bench.main(["--n", "1"]) == 1
