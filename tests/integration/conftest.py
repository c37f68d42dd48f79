"""Start the local gateway (the README's run command) on a free loopback port, and stop it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import Gateway


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()
