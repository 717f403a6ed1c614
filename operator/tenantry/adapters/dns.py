"""DNS I/O: an authoritative zone updated with RFC 2136 + TSIG, and a resolver for verification."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.tsig
import dns.tsigkeyring
import dns.update

from tenantry.domain.dns import Record

TYPES = ("A", "CNAME", "TXT")


class DnsError(Exception):
    """The DNS server is unreachable or refused; `reason` is one CamelCase word for a condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _text(rdata: object, kind: str) -> str:
    if kind == "TXT":
        # A customer's TXT record need not be UTF-8; ours always is, so a replaced byte never matches.
        return b"".join(rdata.strings).decode(errors="replace")  # type: ignore[attr-defined]
    return rdata.to_text().rstrip(".")  # type: ignore[attr-defined]


class Rfc2136Zone:
    """An authoritative zone we read by direct queries and change by signed dynamic updates."""

    def __init__(self, server: str, port: int, zone: str, key_name: str, secret: str,
                 algorithm: str = "hmac-sha256", timeout: float = 3.0) -> None:
        self.server, self.port, self.zone, self.timeout = server, port, zone.rstrip("."), timeout
        self.keyring = dns.tsigkeyring.from_text({key_name: secret})
        self.key_name = dns.name.from_text(key_name)
        self.algorithm = dns.name.from_text(algorithm)

    def _where(self) -> str:
        return f"{self.server}:{self.port}"

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Turn transport and TSIG failures into DnsErrors that say what to check."""
        try:
            yield
        except (dns.exception.Timeout, OSError) as error:
            raise DnsError("DNSUnavailable", f"DNS server {self._where()} does not answer ({error or 'timeout'})") \
                from error
        except dns.tsig.PeerError as error:
            raise DnsError("TSIGRejected", f"DNS server {self._where()} rejected the TSIG key "
                           f"{self.key_name.to_text()}: {error}; check the key name and secret") from error

    async def read(self, names: Iterable[str]) -> dict[str, list[Record]]:
        """The A, CNAME and TXT record sets at each name (signed queries, straight to the server)."""
        out: dict[str, list[Record]] = {}
        pairs = [(name, kind) for name in sorted(set(names)) for kind in TYPES]
        answers = await asyncio.gather(*(self._query(name, kind) for name, kind in pairs))
        for (name, _), found in zip(pairs, answers, strict=True):
            out.setdefault(name, []).extend(found)
        return out

    async def _query(self, name: str, kind: str) -> list[Record]:
        query = dns.message.make_query(name + ".", kind)
        query.use_tsig(self.keyring, keyname=self.key_name, algorithm=self.algorithm)
        with self._talking():
            response = await dns.asyncquery.udp(query, self.server, port=self.port, timeout=self.timeout)
        records = []
        for rrset in response.answer:
            if rrset.name.to_text().rstrip(".") == name and dns.rdatatype.to_text(rrset.rdtype) == kind:
                values = tuple(sorted(_text(r, kind) for r in rrset))
                records.append(Record(name, kind, values, rrset.ttl))
        return records

    async def change(self, upserts: Iterable[Record], deletes: Iterable[Record]) -> None:
        """One atomic dynamic update: replace the upserted sets, delete the others."""
        update = dns.update.Update(self.zone + ".", keyring=self.keyring, keyname=self.key_name,
                                   keyalgorithm=self.algorithm)
        for record in deletes:
            update.delete(record.name + ".", record.type)
        for record in upserts:
            values = [f'"{v}"' if record.type == "TXT" else (v + "." if record.type == "CNAME" else v)
                      for v in record.values]
            update.replace(record.name + ".", record.ttl, record.type, *values)
        with self._talking():
            response = await dns.asyncquery.tcp(update, self.server, port=self.port, timeout=self.timeout)
        code = response.rcode()
        if code != dns.rcode.NOERROR:
            raise DnsError("DNSUpdateRefused", f"DNS server {self._where()} refused the update of zone "
                           f"{self.zone}: {dns.rcode.to_text(code)}")


class Resolver:
    """Looks up what a customer published, through the resolver the operator is pointed at."""

    def __init__(self, nameservers: list[tuple[str, int]] | None = None, timeout: float = 3.0) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [host for host, _ in nameservers]
            self._resolver.port = nameservers[0][1]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.cache = None  # every check must see the current state

    async def lookup(self, name: str, kind: str) -> list[str]:
        """Values of the record set, [] when there is none; DnsError when DNS itself fails."""
        try:
            answer = await self._resolver.resolve(name, kind, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
            raise DnsError("ResolverUnavailable", f"cannot resolve {name} {kind}: {error}") from error
        except dns.exception.DNSException as error:
            # Anything else the customer's DNS or the name itself can cause (YXDOMAIN, a name over
            # 255 bytes, a malformed answer) fails this one look-up, never the tenant's whole pass.
            raise DnsError("ResolverFailed", f"cannot resolve {name} {kind}: {error or type(error).__name__}") \
                from error
        if answer.rrset is None:
            return []
        return [_text(r, kind) for r in answer.rrset]
