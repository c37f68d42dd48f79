"""Cold import of the payment functions' handler modules, on the built layer, before and after a change.

    .venv/bin/python scripts/bench_coldimport.py [--before REF] [--runs 15] [--python PATH]

What is measured, per function and per tree (``--before`` a git ref, and the working tree):

1. The layer is built as ``sam build`` builds it: ``layers/tahsil/Makefile``'s ``build-TahsilLayer``
   (dependencies as wheels, sourceless .pyc; the tahsil package with unchecked-hash .pyc), with Python 3.13,
   for this machine's architecture (the template's arm64 wheels do not run on x86_64; the bytecode is the
   same). A ref's layer is built once and kept under ``.bench/coldimport/``; the working tree's every run.
2. boto3 (which the Lambda runtime provides, the layer does not) is installed beside it, as the runtime's
   site-packages, at the version of the dev venv.
3. A fresh interpreter (``python3.13 -I -B``) with sys.path as Lambda's (function code, layer, runtime),
   the function's environment from template.yaml (``!Ref`` values as placeholders) and
   ``AWS_LAMBDA_FUNCTION_NAME`` set, times importing the handler module as Lambda's bootstrap does
   (``importlib.import_module`` of the handler's module) up to reading the handler attribute. The
   function's code has no .pyc (Lambda's code directory is read-only; sam build writes none).

Runs alternate between the trees, so drift on a shared machine falls on both. The report gives, per function
and tree, the median CPU ms of the import (``time.process_time``: on a shared machine wall time mostly measures
the queue for a core, which a Lambda's own vCPU does not have) and the median wall ms beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from tahsil_local import template  # noqa: E402

CACHE = ROOT / ".bench" / "coldimport"
# The last main with import patching (tahsil.api's _DeferredModule, tahsil.api.lean): the default "before".
PATCHED = "8d3d855"
PAYMENT_FUNCTIONS = ("AuthorizePaymentFunction", "SalePaymentFunction", "CapturePaymentFunction",
                     "VoidPaymentFunction", "RefundPaymentFunction", "CreatePaymentIntentFunction",
                     "ConfirmPaymentIntentFunction")

# Lambda SnapStart for Python, us-east-1 list prices (aws.amazon.com/lambda/pricing, "SnapStart"): the cache is
# charged per GB of the function's memory per second a published version is cached (at least 3 hours), each
# restore per GB of memory restored, on top of the usual request and duration charges.
SNAPSTART_CACHE_PER_GB_S = 0.0000015046
SNAPSTART_RESTORE_PER_GB = 0.0001397998
PAYMENTS_PER_S = 10  # the cost table's load (docs/benchmarks.md, "Cost per 1M payments")

PROBE = """
import importlib, sys, time
code_dir, layer, runtime, module_name, attr = sys.argv[1:6]
sys.path[:0] = [code_dir, layer]
sys.path.append(runtime)
start, cpu = time.perf_counter(), time.process_time()
module = importlib.import_module(module_name)
getattr(module, attr)
print((time.process_time() - cpu) * 1000, (time.perf_counter() - start) * 1000)
"""


@dataclass
class Tree:
    name: str
    root: Path  # holds template.yaml, functions/, layers/tahsil/
    layer: Path  # the built layer's python/ directory
    runs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (CPU ms, wall ms) per run


def python313(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        prefix = subprocess.run(["pyenv", "prefix", "3.13.0"], capture_output=True, text=True, check=True).stdout
        candidate = Path(prefix.strip()) / "bin" / "python3.13"
        if candidate.exists():
            return str(candidate)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = shutil.which("python3.13")
    if found:
        return found
    print("bench_coldimport: no Python 3.13 found (pyenv 3.13.0 or python3.13 on PATH); using", sys.executable)
    return sys.executable


def build_layer(source: Path, out: Path, python: str) -> Path:
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    built = subprocess.run(["make", "-s", "-C", str(source / "layers" / "tahsil"), "build-TahsilLayer",
                            f"ARTIFACTS_DIR={out}", f"PYTHON={python}", f"PLATFORM=manylinux2014_{arch}"],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise SystemExit(f"bench_coldimport: building the layer of {source} failed:\n{built.stdout}{built.stderr}")
    return out / "python"


def export_ref(ref: str, python: str) -> Tree:
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    where = CACHE / sha[:12]
    if not (where / "built").exists():
        if where.exists():
            shutil.rmtree(where)
        (where / "src").mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "--format=tar", sha, "template.yaml", "functions", "layers/tahsil",
                                  "docs/openapi.json"],
                                 cwd=ROOT, capture_output=True, check=True).stdout
        with tempfile.TemporaryFile() as fh:
            fh.write(archive)
            fh.seek(0)
            with tarfile.open(fileobj=fh) as tar:
                tar.extractall(where / "src", filter="data")
        build_layer(where / "src", where / "layer", python)
        (where / "built").touch()
    return Tree(ref if sha.startswith(ref) else f"{ref} ({sha[:7]})", where / "src", where / "layer" / "python")


def runtime_dir(python: str) -> Path:
    version = importlib.metadata.version("boto3")
    where = CACHE / f"runtime-boto3-{version}"
    if not (where / "boto3").exists():
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
                        str(where), f"boto3=={version}"], check=True)
    return where


def environment(fn: template.Function, parameters: dict[str, str]) -> dict[str, str]:
    env = {k: v for k in ("PATH", "HOME", "LANG") if (v := os.environ.get(k))}
    for name, value in fn.environment.items():
        if isinstance(value, dict) and value.get("Ref") in parameters:  # a parameter: its default
            value = parameters[value["Ref"]]
        env[name] = str(value) if isinstance(value, str | int) else f"bench-{name.lower()}"  # a resource: a name
    env.update({"AWS_LAMBDA_FUNCTION_NAME": fn.logical_id, "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory), "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench"})
    return env


def probe(python: str, tree: Tree, fn: template.Function, runtime: Path) -> tuple[float, float]:
    parameters = template.parameter_defaults(template.load(tree.root / "template.yaml"))
    code_dir = tree.root / fn.code_dir.relative_to(ROOT)
    module_name, attr = fn.handler.rsplit(".", 1)
    out = subprocess.run([python, "-I", "-B", "-c", PROBE, str(code_dir), str(tree.layer), str(runtime),
                          module_name, attr], env=environment(fn, parameters), cwd=code_dir, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise SystemExit(f"bench_coldimport: importing {fn.logical_id} ({tree.name}) failed:\n{out.stderr}")
    cpu, wall = out.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def snapstart_cost(doc: dict) -> list[str]:
    """What SnapStart on the payment functions adds to the bill, from their memory sizes in template.yaml."""
    fns = {f.logical_id: f for f in template.functions(doc)}
    gb = sum(fns[name].memory for name in PAYMENT_FUNCTIONS) / 1024  # one live version each
    per_month = gb * SNAPSTART_CACHE_PER_GB_S * 30 * 86400
    per_million = gb * SNAPSTART_CACHE_PER_GB_S * 1_000_000 / PAYMENTS_PER_S
    restore = fns["AuthorizePaymentFunction"].memory / 1024 * SNAPSTART_RESTORE_PER_GB * 1000
    return [f"SnapStart=PublishedVersions on the {len(PAYMENT_FUNCTIONS)} payment functions ({gb:g} GB in all):",
            f"  cache ${per_month:.2f} a month for one cached version of each (${per_million:.2f} per 1M payments "
            f"at {PAYMENTS_PER_S} payments/s); each further cached version of a function "
            f"${per_month / len(PAYMENT_FUNCTIONS):.2f} a month",
            f"  restore ${restore:.3f} per 1,000 new execution environments at "
            f"{fns['AuthorizePaymentFunction'].memory} MB"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=PATCHED, help=f"git ref to compare with (default {PATCHED}, the last "
                        "main with import patching); '' for the working tree alone")
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per function and tree")
    parser.add_argument("--python", help="the interpreter (default: pyenv's 3.13.0, else python3.13)")
    args = parser.parse_args()

    python = python313(args.python)
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    trees = []
    if args.before:
        trees.append(export_ref(args.before, python))
    trees.append(Tree("working tree", ROOT, build_layer(ROOT, CACHE / f"worktree-{digest}", python)))
    runtime = runtime_dir(python)
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()

    fns = {f.logical_id: f for f in template.functions(template.load())}
    for name in PAYMENT_FUNCTIONS:
        for tree in trees:
            probe(python, tree, fns[name], runtime)  # warm the page cache; not counted
        for _ in range(args.runs):
            for tree in trees:
                tree.runs.setdefault(name, []).append(probe(python, tree, fns[name], runtime))

    print(f"\nCold import of the handler module on the built layer: Python {version} ({platform.machine()}), "
          f"{args.runs} fresh interpreters per function and tree, alternating; ms, CPU median (wall median)\n")
    pair = len(trees) == 2
    print("| function | " + " | ".join(t.name for t in trees) + (" | change, CPU |" if pair else " |"))
    print("|---|" + "---:|" * (len(trees) + pair))
    cpu_medians: dict[str, list[float]] = {t.name: [] for t in trees}
    for name in PAYMENT_FUNCTIONS:
        cells = []
        for tree in trees:
            cpu = statistics.median(r[0] for r in tree.runs[name])
            cpu_medians[tree.name].append(cpu)
            cells.append(f"{cpu:.1f} ({statistics.median(r[1] for r in tree.runs[name]):.1f})")
        change = f" | {cpu_medians[trees[1].name][-1] - cpu_medians[trees[0].name][-1]:+.1f}" if pair else ""
        print(f"| {name} | " + " | ".join(cells) + change + " |")
    overall = [statistics.median(cpu_medians[t.name]) for t in trees]
    change = f" | {overall[1] - overall[0]:+.1f}" if pair else ""
    print("| median of the seven, CPU | " + " | ".join(f"{v:.1f}" for v in overall) + change + " |")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("\n".join(snapstart_cost(template.load())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
