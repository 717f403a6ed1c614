"""`python -m tenantry.portal`: the partner portal (its own Deployment in the chart).

Its own process, not a port of the operator: it faces partners' browsers, so it runs with a
read-only ServiceAccount (plus TokenReview and SubjectAccessReview), scales and restarts on its
own, and a flood of page views never slows a reconcile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from aiohttp import web

from tenantry.adapters.http import Api
from tenantry.adapters.nesting import allow_kubernetes_nesting
from tenantry.portal.server import application, build
from tenantry.portal.settings import PortalSettings


async def serve(settings: PortalSettings) -> None:
    api = Api.from_environment()
    portal = build(settings, api)
    informers = portal.cluster.run()
    # Pages read from the caches: serve once they hold the cluster's objects.
    await portal.cluster.synced()
    runner = web.AppRunner(application(portal), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.address, settings.port).start()
    logging.getLogger("tenantry.portal").info("partner portal on http://%s:%d/", settings.address, settings.port)
    try:
        await asyncio.Event().wait()
    finally:
        for task in informers:
            task.cancel()
        await runner.cleanup()
        await api.close()
        if portal.prometheus is not None:
            await portal.prometheus.close()


def main() -> int:
    allow_kubernetes_nesting()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s [%(levelname)s] %(message)s")
    try:
        settings = PortalSettings.from_env(os.environ)
    except ValueError as error:
        print(f"tenantry portal: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
