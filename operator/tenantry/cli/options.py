"""Options more than one command takes, with the same defaults everywhere."""

from __future__ import annotations

import argparse
import os

PLATFORM = "tenantry-system"  # the chart's namespace, where the operator runs by default


def add_platform_options(command: argparse.ArgumentParser, domain_help: str) -> None:
    """--platform-namespace and --platform-domain, by default the operator's own settings of them."""
    command.add_argument("--platform-namespace", default=os.environ.get("TENANTRY_PLATFORM_NAMESPACE") or PLATFORM,
                         help="where platform-wide FeatureSets and Brandings live (default: "
                              f"$TENANTRY_PLATFORM_NAMESPACE, else {PLATFORM})")
    command.add_argument("--platform-domain", default=os.environ.get("TENANTRY_PLATFORM_DOMAIN", ""),
                         help=f"the platform's domain: {domain_help} (default: $TENANTRY_PLATFORM_DOMAIN)")
