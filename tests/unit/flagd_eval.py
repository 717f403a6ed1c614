"""Evaluate flag documents with the real OpenFeature SDK and flagd provider (in-process, file source)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext


@contextmanager
def flagd_client(document: dict[str, Any] | str) -> Iterator[OpenFeatureClient]:
    """An OpenFeature client whose flagd provider reads exactly this document from a file."""
    text = document if isinstance(document, str) else json.dumps(document)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flags.json"
        path.write_text(text)
        api.set_provider(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
        client = api.get_client()
        deadline = time.monotonic() + 10
        while client.get_provider_status().value != "READY" and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield client
        finally:
            api.shutdown()


def context(tenant: str | None) -> EvaluationContext:
    return EvaluationContext(attributes={"tenant": tenant} if tenant else {})
