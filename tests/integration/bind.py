"""A real BIND 9 (Debian `bind9`) on a loopback port, for the DNS tests.

It is authoritative for the platform zone and for the customers' zones, accepts dynamic updates
signed with a TSIG key, and can be stopped and started again to simulate an outage.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.tsigkeyring
import dns.update

from tests.integration.net import free_port

KEY_NAME = "tenantry-key"
ALGORITHM = "hmac-sha256"


@dataclass
class Bind:
    folder: Path
    zones: tuple[str, ...]
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    process: subprocess.Popen | None = None

    def write_config(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        zones = "".join(
            f'zone "{z}" {{ type primary; file "{self.folder}/{z}.zone"; '
            f"allow-update {{ key {KEY_NAME}; }}; }};\n" for z in self.zones)
        (self.folder / "named.conf").write_text(f"""
key "{KEY_NAME}" {{ algorithm {ALGORITHM}; secret "{self.secret}"; }};
options {{
  directory "{self.folder}";
  listen-on port {self.port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  pid-file "{self.folder}/named.pid";
  recursion no;
  dnssec-validation no;
  allow-query {{ any; }};
}};
{zones}""")
        for zone in self.zones:
            (self.folder / f"{zone}.zone").write_text(
                f"$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 60\n@ IN NS ns.{zone}.\n"
                f"ns IN A 127.0.0.1\n")

    def start(self) -> None:
        if not (self.folder / "named.conf").exists():
            self.write_config()
        named = shutil.which("named") or "/usr/sbin/named"
        self.process = subprocess.Popen([named, "-g", "-c", str(self.folder / "named.conf")],
                                        stdout=(self.folder / "named.log").open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("named exited: " + (self.folder / "named.log").read_text()[-2000:])
            try:
                dns.query.udp(dns.message.make_query(f"ns.{self.zones[0]}.", "A"), "127.0.0.1", port=self.port,
                              timeout=0.5)
                return
            except Exception:  # noqa: BLE001  (not answering yet)
                time.sleep(0.2)
        raise RuntimeError("named did not answer within 20 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)

    def update(self, zone: str, name: str, kind: str, *values: str, ttl: int = 60) -> None:
        """Publish (or with no values, delete) a record set, as a customer or another tool would."""
        keyring = dns.tsigkeyring.from_text({KEY_NAME: self.secret})
        update = dns.update.Update(zone + ".", keyring=keyring, keyalgorithm=ALGORITHM)
        if values:
            update.replace(name + ".", ttl, kind, *values)
        else:
            update.delete(name + ".", kind)
        response = dns.query.tcp(update, "127.0.0.1", port=self.port, timeout=5)
        assert response.rcode() == 0, response

    def lookup(self, name: str, kind: str) -> list[str]:
        response = dns.query.udp(dns.message.make_query(name + ".", kind), "127.0.0.1", port=self.port, timeout=3)
        return sorted(r.to_text().strip('"').rstrip(".") for rrset in response.answer
                      if rrset.rdtype == dns.rdatatype.from_text(kind) for r in rrset)
