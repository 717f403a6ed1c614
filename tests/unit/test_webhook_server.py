"""The webhook's HTTPS server (handlers/webhook.py) on a real socket with a real certificate.

Tested here:
- an AdmissionReview is answered in its own API version, with the request's uid; a Denied judge
  gives allowed=false with its message and code; warnings reach the response
- deletes and CONNECTs are never judged
- NotReady (the operator has not started) is a 503, so the API server's failurePolicy decides
- an unknown path is a 404; a body that is no AdmissionReview is a 400; a review that does not
  decode (nested too deep, cut short) but names its uid is refused (200, allowed=false): an error
  status would let it in under failurePolicy Ignore
- a judge that fails (a bug) refuses the review (200, allowed=false, code 500): an error status
  would let it in under failurePolicy Ignore
- the certificate is read again when its files change (a renewal), without a restart; a pair that
  does not load (new certificate, old key) is not taken, and the old one serves on
- each review is timed in tenantry_admission_duration_seconds
- a mutating judge's JSON patch is answered base64-encoded with patchType JSONPatch, and never
  with a refusal
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tenantry.devtools import localwebhook
from tenantry.domain.settings import ProcessSettings
from tenantry.handlers import webhook
from tenantry.handlers.webhook import Denied, NotReady, Review, WebhookServer
from tenantry.metrics.operator import ADMISSION_SECONDS
from tests.integration.net import free_port


async def _deny(review: Review) -> None:
    review.warnings.append("careful")
    if (review.body.get("metadata") or {}).get("name") == "bad":
        raise Denied("metadata.name: bad is refused", code=422)


async def _mutate(review: Review) -> None:
    review.patch.append({"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]})
    await _deny(review)


async def _starting(review: Review) -> None:
    raise NotReady


async def _buggy(review: Review) -> None:
    raise KeyError("a bug a tenant admin found")


def _review(name: str, operation: str = "CREATE", version: str = "admission.k8s.io/v1") -> dict:
    return {"apiVersion": version, "kind": "AdmissionReview",
            "request": {"uid": f"uid-{name}", "operation": operation, "userInfo": {"username": "someone"},
                        "object": {"metadata": {"name": name}}, "oldObject": None}}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(webhook, "CERT_CHECK_SECONDS", 0.2)
    ca = localwebhook.serving_certificate(tmp_path)
    port = free_port()
    process = ProcessSettings(webhook_port=port, webhook_address="127.0.0.1", webhook_cert_dir=str(tmp_path))
    server = WebhookServer(process, lambda: {"validate-x": _deny, "validate-starting": _starting,
                                             "validate-buggy": _buggy, "mutate-x": _mutate})
    server.start()
    context = ssl.create_default_context(cadata=ca.decode())
    yield port, context, tmp_path
    server.stop()


def _post(port: int, context: ssl.SSLContext, path: str, body: bytes) -> tuple[int, dict | str]:
    request = urllib.request.Request(f"https://127.0.0.1:{port}/{path}", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_denied_review_carries_message_code_uid_and_warnings(served) -> None:
    port, context, _ = served
    before = ADMISSION_SECONDS.labels("validate-x")._sum.get()
    status, answer = _post(port, context, "validate-x", json.dumps(_review("bad")).encode())
    assert status == 200
    assert answer == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                      "response": {"uid": "uid-bad", "allowed": False, "warnings": ["careful"],
                                   "status": {"message": "metadata.name: bad is refused", "code": 422}}}
    assert ADMISSION_SECONDS.labels("validate-x")._sum.get() > before


def test_an_admitted_review_in_v1beta1_is_answered_in_v1beta1(served) -> None:
    port, context, _ = served
    status, answer = _post(port, context, "validate-x",
                           json.dumps(_review("good", version="admission.k8s.io/v1beta1")).encode())
    assert status == 200 and answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answer["response"] == {"uid": "uid-good", "allowed": True, "warnings": ["careful"]}


def test_a_mutating_review_carries_its_patch_unless_refused(served) -> None:
    port, context, _ = served
    status, answer = _post(port, context, "mutate-x", json.dumps(_review("good")).encode())
    assert status == 200
    response = answer["response"]
    assert (response["allowed"], response["patchType"]) == (True, "JSONPatch")
    assert json.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}]
    status, answer = _post(port, context, "mutate-x", json.dumps(_review("bad")).encode())
    assert answer["response"]["allowed"] is False
    assert "patch" not in answer["response"] and "patchType" not in answer["response"]


def test_deletes_are_never_judged(served) -> None:
    port, context, _ = served
    status, answer = _post(port, context, "validate-x", json.dumps(_review("bad", operation="DELETE")).encode())
    assert status == 200 and answer["response"] == {"uid": "uid-bad", "allowed": True}


def test_not_started_is_503_unknown_path_404_garbage_400(served) -> None:
    port, context, _ = served
    assert _post(port, context, "validate-starting", json.dumps(_review("x")).encode())[0] == 503
    assert _post(port, context, "validate-nothing", json.dumps(_review("x")).encode())[0] == 404
    status, text = _post(port, context, "validate-x", b"\x00not json")
    assert status == 400 and "not an AdmissionReview" in str(text)


def test_a_review_that_does_not_decode_is_refused_by_its_uid(served) -> None:
    port, context, _ = served
    cut = json.dumps(_review("x", version="admission.k8s.io/v1beta1")).encode()[:-40] + b"[[[["
    status, answer = _post(port, context, "validate-x", cut)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answer["response"]["uid"] == "uid-x" and answer["response"]["allowed"] is False
    assert "could not read this request" in answer["response"]["status"]["message"]


def test_a_renewed_certificate_is_served_without_a_restart(served, tmp_path_factory) -> None:
    port, old_context, folder = served
    renewed = tmp_path_factory.mktemp("renewed")
    new_ca = localwebhook.serving_certificate(renewed)
    shutil.copy(renewed / "tls.key", folder / "tls.key.new")
    shutil.copy(renewed / "tls.crt", folder / "tls.crt.new")
    (folder / "tls.key.new").rename(folder / "tls.key")
    (folder / "tls.crt.new").rename(folder / "tls.crt")
    new_context = ssl.create_default_context(cadata=new_ca.decode())

    def served_by_new() -> bool:
        try:
            return _post(port, new_context, "validate-x", json.dumps(_review("good")).encode())[0] == 200
        except urllib.error.URLError:
            return False
    deadline = time.monotonic() + 30
    while not served_by_new():  # polled: the server looks at the files every CERT_CHECK_SECONDS
        assert time.monotonic() < deadline, "the renewed certificate was not served within 30 s"
        time.sleep(0.1)
    with pytest.raises(urllib.error.URLError):
        _post(port, old_context, "validate-x", json.dumps(_review("good")).encode())


def test_a_failing_judge_refuses_instead_of_letting_in(served) -> None:
    port, context, _ = served
    status, answer = _post(port, context, "validate-buggy", json.dumps(_review("x")).encode())
    assert status == 200
    assert answer["response"]["allowed"] is False and answer["response"]["status"]["code"] == 500


def test_a_half_written_renewal_keeps_the_old_certificate(served, tmp_path_factory) -> None:
    port, context, folder = served
    renewed = tmp_path_factory.mktemp("half")
    localwebhook.serving_certificate(renewed)
    shutil.copy(renewed / "tls.crt", folder / "tls.crt.new")
    (folder / "tls.crt.new").rename(folder / "tls.crt")  # the new certificate, the old key still
    # Until the reload has been tried (it looks every CERT_CHECK_SECONDS, 0.2 here), and after it:
    # the old pair serves every handshake.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert _post(port, context, "validate-x", json.dumps(_review("good")).encode())[0] == 200
        time.sleep(0.1)
