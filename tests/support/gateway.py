"""The local gateway (the README's run command) on a free loopback port, as the integration tests drive it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
# Webhook retries wait this long (seconds) in the gateway under test, instead of minutes and hours.
TEST_RETRY_SCHEDULE = (1, 2, 2, 2, 2, 2, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, tmp: Path, overrides: str = "") -> None:
        self.port = free_port()
        self.state_dir = tmp
        self.schedule = TEST_RETRY_SCHEDULE
        env = {**os.environ, "TAHSIL_PORT": str(self.port), "TAHSIL_STATE_DIR": str(tmp), "PYTHONUNBUFFERED": "1",
               "TAHSIL_PARAMETER_OVERRIDES": "WebhookRetrySchedule=" + ",".join(map(str, self.schedule)) + " " + overrides}
        env.pop("AWS_ENDPOINT_URL", None)
        self.log = open(tmp / "gateway.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "tahsil_local.cli", "dev"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        state_file = tmp / f"dev-{self.port}.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {(tmp / 'gateway.log').read_text()}")
            if state_file.exists():
                try:
                    self.state: dict[str, Any] = json.loads(state_file.read_text())
                    requests.get(self.state["base_url"] + "/v1/openapi.json", timeout=5)
                    break
                except (ValueError, requests.ConnectionError):
                    pass
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("gateway did not start in time")
        self.url = self.state["base_url"]
        self.session = requests.Session()

    def key(self, mode: str = "test", kind: str = "secret") -> str:
        return self.state["keys"][mode][kind]

    def call(self, method: str, path: str, *, key: str | None = None, json_body: Any = None,
             idem: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"X-API-Key": key or self.key()}
        if idem:
            headers["Idempotency-Key"] = idem
        return requests.request(method, self.url + path, headers=headers, json=json_body, timeout=30, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        return self.proc.returncode
