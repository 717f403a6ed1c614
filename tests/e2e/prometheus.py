"""A real Prometheus (Debian package) on loopback, scraping the operator and evaluating the shipped rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.fixtures import wait_for
from tests.integration.net import free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "tenantry" / "rules" / "tenantry-rules.yaml"


class Prometheus:
    def __init__(self, folder: Path, target_port: int) -> None:
        """Scrapes 127.0.0.1:target_port each second; whatever TSDB blocks `folder`/data already
        holds (a backfilled history) are part of its data from the start."""
        self.folder, self.port = folder, free_port()
        (folder / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "tenantry",
                                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
        }))
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.process = subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=90d"],  # the default 15 days would drop a backfilled history
            stdout=(folder / "prometheus.log").open("wb"), stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=60, what="Prometheus ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("prometheus exited: " + (self.folder / "prometheus.log").read_text()[-2000:])
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1).status == 200
        except OSError:
            return False

    def query(self, expr: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            return json.loads(urllib.request.urlopen(url, timeout=10).read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
