"""The Public Suffix List (bundled with the publicsuffixlist package, read once from its data file)."""

from __future__ import annotations

from publicsuffixlist import PublicSuffixList

from tenantry.domain.dns import domain_problem

_PSL = PublicSuffixList()


def unclaimable(domain: str, platform_domain: str) -> str | None:
    """Why a custom domain can never be claimed (a public suffix, a platform name), or None.

    An empty platform domain skips the platform-name check (`tenantry validate` without it).
    """
    return domain_problem(domain, platform_domain, _PSL.publicsuffix(domain), _PSL.is_public(domain))
