"""Modules an API function defers in Lambda (``tahsil.api``) load on first use, and work when they do."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "tahsil"


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join([str(LAYER), *sys.path])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ, capture_output=True, text=True,
                          timeout=120, check=False)


def test_asyncio_is_not_loaded_by_the_event_handler_in_lambda_and_works_on_first_use() -> None:
    out = _run("""
        import sys
        import tahsil.api
        import aws_lambda_powertools.event_handler  # imports its AppSync resolvers, which import asyncio
        import tahsil.api.http
        print("loaded at import:", "asyncio.base_events" in sys.modules)
        import asyncio
        async def answer():
            await asyncio.sleep(0)
            return 42
        print("run:", asyncio.run(answer()))
        from asyncio import gather
        print("gather:", gather.__module__)
    """, AWS_LAMBDA_FUNCTION_NAME="AuthorizePaymentFunction")
    assert out.returncode == 0, out.stderr
    assert "loaded at import: False" in out.stdout
    assert "run: 42" in out.stdout
    assert "gather: asyncio.tasks" in out.stdout


def test_outside_lambda_asyncio_loads_as_usual() -> None:
    out = _run("""
        import sys
        import tahsil.api
        import aws_lambda_powertools.event_handler
        print(type(sys.modules["asyncio"]).__name__, "asyncio.base_events" in sys.modules)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["module", "True"]


def test_in_lambda_the_rest_resolver_loads_without_the_other_resolvers_and_event_classes() -> None:
    out = _run("""
        import sys
        import tahsil.api.http
        loaded = set(sys.modules)
        print("appsync:", "aws_lambda_powertools.event_handler.appsync" in loaded)
        print("firehose:", "aws_lambda_powertools.utilities.data_classes.kinesis_firehose_event" in loaded)
        # every name stays importable: a name outside the map runs the package's own code, same objects
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver, AppSyncResolver
        from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver as direct
        from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, SQSEvent
        from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEvent as event
        import aws_lambda_powertools.event_handler
        import aws_lambda_powertools.utilities.data_classes
        chained = aws_lambda_powertools.utilities.data_classes.APIGatewayProxyEvent  # as attributes too
        print("same:", APIGatewayRestResolver is direct and APIGatewayProxyEvent is event is chained,
              AppSyncResolver.__name__, SQSEvent.__name__)
    """, AWS_LAMBDA_FUNCTION_NAME="AuthorizePaymentFunction")
    assert out.returncode == 0, out.stderr
    assert "appsync: False" in out.stdout and "firehose: False" in out.stdout
    assert "same: True AppSyncResolver SQSEvent" in out.stdout


def test_every_function_imports_in_a_lambda_environment() -> None:
    """API functions defer Powertools' packages, queue workers do not (their event classes' modules import
    names back from the package): each function's module imports as Lambda imports it."""
    from concurrent.futures import ThreadPoolExecutor

    root = LAYER.parents[1]
    apps = sorted(root.glob("functions/**/app.py"))
    assert len(apps) > 40

    def load(app: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        return app, _run(f"""
            import importlib.util, sys
            sys.path.insert(0, {str(app.parent)!r})
            spec = importlib.util.spec_from_file_location("app", {str(app)!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            assert callable(module.handler)
        """, AWS_LAMBDA_FUNCTION_NAME=app.parent.name, AWS_DEFAULT_REGION="us-east-1")

    with ThreadPoolExecutor(4) as pool:
        failed = {str(app.relative_to(root)): out.stderr[-500:] for app, out in pool.map(load, apps) if out.returncode}
    assert not failed


def test_in_lambda_pydantics_plugin_lookup_leaves_importlib_resources_and_zipfile_for_first_use() -> None:
    out = _run("""
        import sys
        import tahsil.api.http  # pydantic models built: its plugin loader imported importlib.metadata
        print("loaded:", "importlib.resources._common" in sys.modules, "zipfile._path" in sys.modules)
        import importlib.metadata, importlib.resources, io, zipfile
        print("metadata:", importlib.metadata.version("pydantic") == __import__("pydantic").VERSION)
        print("resources:", importlib.resources.files("tahsil").joinpath("__init__.py").is_file())
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a.txt", "b")
        print("zip:", zipfile.ZipFile(buffer).read("a.txt"))
    """, AWS_LAMBDA_FUNCTION_NAME="AuthorizePaymentFunction")
    assert out.returncode == 0, out.stderr
    assert "loaded: False False" in out.stdout
    assert "metadata: True" in out.stdout and "resources: True" in out.stdout and "zip: b'b'" in out.stdout
