"""adapters/nesting.py: after allow_kubernetes_nesting(), a document nested as deep as the API
server stores one (a metadata.managedFields a tenant admin wrote, 9,990 levels) is read by every
parser the processes use: kopf's (json), the informers' and the webhook's (msgspec), on the main
thread and on a thread started afterwards (the webhook's). Without it, each one fails. Run in a
fresh interpreter each, as a process's main() would run it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent("""
    import json, sys, threading
    from tenantry.adapters.nesting import allow_kubernetes_nesting
    from tenantry.handlers.webhook import _decoded
    if sys.argv[1] == "allowed":
        allow_kubernetes_nesting()
    depth = 9_990
    review = ('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":'
              '{"metadata":{"name":"deep","managedFields":[{"fieldsV1":' + '{"f:a":' * depth + '{}' + '}' * depth
              + '}]}}}}').encode()
    results = {}

    def read(where):
        try:
            document = _decoded(review)
            results[where + " msgspec"] = document["request"]["object"]["metadata"]["name"] if document else None
            results[where + " json"] = json.loads(review)["request"]["object"]["metadata"]["name"]
        except RecursionError:
            results[where + " json"] = "RecursionError"

    read("main")
    thread = threading.Thread(target=read, args=("thread",))
    thread.start()
    thread.join()
    print(json.dumps(results, sort_keys=True))
""")


def _run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{ROOT / 'operator'}", "PATH": "/usr/bin:/bin"})


def test_a_document_as_deep_as_the_api_server_stores_is_read_everywhere() -> None:
    result = _run("allowed")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ('{"main json": "deep", "main msgspec": "deep", "thread json": "deep", '
                                     '"thread msgspec": "deep"}')


def test_without_it_the_same_document_is_not_read() -> None:
    result = _run("default")
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"main msgspec": null' in result.stdout and '"main json": "RecursionError"' in result.stdout


def test_under_a_low_hard_stack_limit_a_deep_document_fails_cleanly() -> None:
    """With a hard stack limit of 4 MiB the recursion limit follows it: the document is not read
    (RecursionError, as before) instead of overflowing the stack and killing the process."""
    import resource

    def low_stack() -> None:
        resource.setrlimit(resource.RLIMIT_STACK, (4 << 20, 4 << 20))

    result = subprocess.run([sys.executable, "-c", SCRIPT, "allowed"], capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": f"{ROOT / 'operator'}", "PATH": "/usr/bin:/bin"}, preexec_fn=low_stack)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert '"main json": "RecursionError"' in result.stdout and '"main msgspec": null' in result.stdout
    assert "lets this process read documents nested about 4096 levels deep" in result.stderr
