"""The admission webhook on a local control plane: a serving certificate for 127.0.0.1 and the
chart's webhook configurations (validating and mutating) pointed at a URL instead of the in-cluster Service.

Used by the integration tests and by `make bench` (which runs with the webhook on, as production does).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from tenantry.devtools import chart


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def serving_certificate(folder: Path) -> bytes:
    """A CA and a certificate for 127.0.0.1 signed by it (tls.crt/tls.key in `folder`); returns the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=webhook-test-ca",
             "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.crt"))
    # ECDSA as the chart's: the API server makes a TLS handshake for most calls.
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", str(folder / "tls.key"), "-out", str(folder / "tls.csr"))
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(folder / "tls.csr"), "-CA", str(folder / "ca.crt"), "-CAkey",
             str(folder / "ca.key"), "-CAcreateserial", "-days", "1", "-extfile", str(folder / "san.ext"),
             "-out", str(folder / "tls.crt"))
    return (folder / "ca.crt").read_bytes()


WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")  # the chart's
KINDS = ",".join(kind.lower() for kind in WEBHOOK_KINDS)  # for kubectl get/delete


def configuration(url: str, ca: bytes, namespace: str, name: str,
                  failure_policy: str | None = None) -> dict[str, Any]:
    """The chart's webhook configurations (rules, paths, policies), each named `name` and sent to
    `url`: a v1 List of the validating and the mutating one, for kubectl apply (delete with KINDS)."""
    rendered = chart.render(namespace=namespace)
    configs = [o for o in rendered if o["kind"] in WEBHOOK_KINDS]
    for config in configs:
        config["metadata"] = {"name": name}
        for hook in config["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": url + path, "caBundle": base64.b64encode(ca).decode()}
            if failure_policy:
                hook["failurePolicy"] = failure_policy
    return {"apiVersion": "v1", "kind": "List", "items": configs}
