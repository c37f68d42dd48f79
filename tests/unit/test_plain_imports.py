"""Imports are plain (issue 22): an ``import`` line runs the module it names, every function's module imports as
Lambda imports it, and importing a handler does no I/O (AWS clients are built on first use)."""

import ast
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "tahsil"


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join([str(LAYER), *sys.path])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ, capture_output=True, text=True,
                          timeout=120, check=False)


def _patches(tree: ast.AST) -> list[str]:
    """What in one module's source swaps modules under the import system."""
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
        for target in targets:
            text = ast.unparse(target)
            if text.startswith("sys.modules[") or text.endswith(".__class__"):
                found.append(f"line {node.lineno}: assigns {text}")
        if isinstance(node, ast.Attribute) and node.attr in ("LazyLoader", "meta_path", "path_hooks"):
            found.append(f"line {node.lineno}: uses {ast.unparse(node)}")
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("sys.modules.__setitem__"):
            found.append(f"line {node.lineno}: calls {ast.unparse(node.func)}")
    return found


def test_no_module_of_the_layer_or_a_function_patches_the_import_system() -> None:
    sources = [*LAYER.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    assert len(sources) > 100
    found = {str(path.relative_to(ROOT)): hits for path in sources
             if (hits := _patches(ast.parse(path.read_text(encoding="utf-8"))))}
    assert not found
    assert not (LAYER / "tahsil" / "api" / "lean.py").exists()


def test_the_guard_finds_a_module_swapped_in_sys_modules() -> None:
    swapped = _patches(ast.parse("import sys, types\nsys.modules['asyncio'] = types.ModuleType('asyncio')\n"
                                 "m = types.ModuleType('m')\nm.__class__ = type('Lazy', (types.ModuleType,), {})\n"))
    assert swapped == ["line 2: assigns sys.modules['asyncio']", "line 4: assigns m.__class__"]


def test_every_function_imports_in_a_lambda_environment() -> None:
    """Each function's module imports as Lambda imports it (AWS_LAMBDA_FUNCTION_NAME set, its code directory first)."""
    apps = sorted((ROOT / "functions").glob("**/app.py"))
    assert len(apps) > 40

    def load(app: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        return app, _run(f"""
            import importlib, sys
            sys.path.insert(0, {str(app.parent)!r})
            module = importlib.import_module("app")
            assert callable(module.handler)
        """, AWS_LAMBDA_FUNCTION_NAME=app.parent.name, AWS_DEFAULT_REGION="us-east-1")

    with ThreadPoolExecutor(2) as pool:
        failed = {str(app.relative_to(ROOT)): out.stderr[-500:] for app, out in pool.map(load, apps) if out.returncode}
    assert not failed


def test_importing_a_payment_handler_builds_no_aws_client_and_opens_no_connection() -> None:
    """Heavy work stays out of import: a SnapStart snapshot holds no client or connection that a restored
    environment would share, and a cold start pays for a client only when a request needs it."""
    out = _run(f"""
        import importlib, socket, sys
        import botocore.session
        made = []
        real = botocore.session.Session.create_client
        def create_client(self, name, *args, **kwargs):
            made.append(name)
            return real(self, name, *args, **kwargs)
        botocore.session.Session.create_client = create_client
        def connect(self, address):
            raise AssertionError(f"connection at import: {{address}}")
        socket.socket.connect = connect
        sys.path.insert(0, {str(ROOT / "functions" / "payments" / "authorize")!r})
        module = importlib.import_module("app")
        assert callable(module.handler)
        print("clients:", made)
        import asyncio  # plain: the standard library is itself, whatever imported it first
        print("asyncio:", asyncio.run(asyncio.sleep(0, result=42)), type(sys.modules["asyncio"]).__name__)
    """, AWS_LAMBDA_FUNCTION_NAME="AuthorizePaymentFunction", AWS_DEFAULT_REGION="us-east-1")
    assert out.returncode == 0, out.stderr
    assert "clients: []" in out.stdout
    assert "asyncio: 42 module" in out.stdout
