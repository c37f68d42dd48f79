"""Static checks of template.yaml for `make test`: cfn-lint with its informational rules, then checkov.

checkov runs from its own virtualenv (``CHECKOV``, created by the Makefile: it pins many dependencies
of its own). The checks it skips are the template's ``Metadata.Checkov.SkipChecks`` (template-wide) and
each resource's ``Metadata.checkov.skip`` (one resource); every skip must give its reason, and any other
failed check fails the run.

    python scripts/check_template.py [--checkov PATH] [--skip-cfn-lint]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))


def skips(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Template-wide skipped check ids, and the problems (a skip without its reason)."""
    problems = []
    wide = ((doc.get("Metadata") or {}).get("Checkov") or {}).get("SkipChecks") or []
    for entry in wide:
        if not str(entry.get("comment") or "").strip():
            problems.append(f"Metadata.Checkov.SkipChecks {entry.get('id')}: no comment giving the reason")
    for name, res in doc["Resources"].items():
        for entry in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            if not str(entry.get("comment") or "").strip():
                problems.append(f"{name}.Metadata.checkov.skip {entry.get('id')}: no comment giving the reason")
    return [str(e["id"]) for e in wide], problems


def run_checkov(checkov: str, wide: list[str]) -> int:
    args = [checkov, "-f", str(ROOT / "template.yaml"), "--framework", "cloudformation", "--compact", "--quiet",
            "--skip-download", "-o", "json"]
    if wide:
        args += ["--skip-check", ",".join(wide)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        print(done.stdout, done.stderr, file=sys.stderr)
        return 2
    report = report[0] if isinstance(report, list) else report
    summary = report.get("summary", {})
    failed = (report.get("results") or {}).get("failed_checks") or []
    for check in failed:
        print(f"checkov {check['check_id']} {check['resource']}: {check['check_name']}", file=sys.stderr)
    print(f"checkov: {summary.get('passed', 0)} passed, {len(failed)} failed, "
          f"{summary.get('skipped', 0)} skipped on resources, {len(wide)} skipped template-wide (reasons in Metadata)")
    if summary.get("parsing_errors"):
        print("checkov could not parse template.yaml", file=sys.stderr)
        return 2
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", default=str(Path.home() / ".cache/tahsil-checkov/bin/checkov"))
    parser.add_argument("--cfn-lint", default=str(Path(sys.executable).parent / "cfn-lint"))
    parser.add_argument("--skip-cfn-lint", action="store_true")
    args = parser.parse_args(argv)
    from tahsil_local import template

    doc = template.load()
    wide, problems = skips(doc)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    if not args.skip_cfn_lint:
        # --include-checks I: the informational rules too (cfn-lint reports only errors and warnings by default).
        lint = subprocess.run([args.cfn_lint, "--include-checks", "I", "--", str(ROOT / "template.yaml")], timeout=600,
                              check=False)
        if lint.returncode:
            return lint.returncode
        print("cfn-lint (with informational rules): no findings")
    return run_checkov(args.checkov, wide)


if __name__ == "__main__":
    sys.exit(main())
