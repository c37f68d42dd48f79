"""Handlers stay one call: a route function in ``functions/**/app.py`` routes, and its package does the work.

The rule, checked on the source with ``ast``: the body of every function decorated as a route
(``@app.get``, ``@app.post``, ...), its docstring aside, is ONE ``return`` of ONE call into the domain
(``http.respond(app, lambda who, ctx: keys.create(who, body))`` counts as one call: the lambda is the
call into the domain). Branches, loops, ``try``, assignments and extra statements belong in the package.

``KNOWN`` lists the handlers that broke the rule when it was written, each with where its logic should
go; the test also fails when one of them is fixed and still listed, so the list only shrinks.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

FUNCTIONS = pathlib.Path(__file__).resolve().parents[2] / "functions"
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "head", "route"}

KNOWN: dict[str, str] = {}


def _routes() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(FUNCTIONS.rglob("app.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ROUTE_DECORATORS
                   for d in node.decorator_list):
                found.append((f"{path.relative_to(FUNCTIONS).as_posix()}:{node.name}", node))
    return found


def _one_call(node: ast.FunctionDef) -> bool:
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or not isinstance(body[0].value, ast.Call):
        return False
    # No branching hidden in the one expression either.
    return not any(isinstance(n, ast.IfExp | ast.BoolOp | ast.ListComp | ast.DictComp | ast.GeneratorExp | ast.NamedExpr)
                   for n in ast.walk(body[0]))


ROUTES = _routes()


def test_the_walk_finds_the_route_handlers():
    names = {name for name, _ in ROUTES}
    assert len(names) > 40
    assert "api_keys/create/app.py:create_key" in names
    assert "dashboard_session/app.py:create_session" in names


@pytest.mark.parametrize(("name", "node"), ROUTES, ids=[name for name, _ in ROUTES])
def test_a_route_handler_is_one_return_of_one_call(name: str, node: ast.FunctionDef):
    if name in KNOWN:
        assert not _one_call(node), f"{name} is one call now: remove it from KNOWN"
        pytest.xfail(f"known: {KNOWN[name]}")
    assert _one_call(node), (f"{name}: a route handler is one return of one call into its package; "
                             "move the logic into the package (tests/unit/test_handlers_one_call.py)")


def test_the_rule_refuses_logic():
    grown = ast.parse("def f(body):\n    x = body.a\n    return keys.create(x)\n").body[0]
    branching = ast.parse("def f(body):\n    return keys.create(body.a if body else None)\n").body[0]
    plain = ast.parse("def f(body):\n    '''doc'''\n    return http.respond(app, lambda who, _c: keys.create(who, body))\n").body[0]
    assert not _one_call(grown) and not _one_call(branching) and _one_call(plain)
