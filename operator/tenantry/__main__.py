"""`python -m tenantry` / `tenantry-operator`: run the operator (all namespaces)."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf

import tenantry.handlers.tenant  # noqa: F401  (registers the handlers)


def main() -> None:
    kopf.configure(verbose=os.environ.get("TENANTRY_VERBOSE") == "1")
    # One line per HTTP request drowns the operator's own messages.
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    health = os.environ.get("TENANTRY_HEALTH_ENDPOINT", "")
    asyncio.run(kopf.operator(clusterwide=True, standalone=True,
                              liveness_endpoint=health or None))


if __name__ == "__main__":
    main()
