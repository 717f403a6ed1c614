"""adapters/dns.Resolver against what a customer's name server can answer (a partner lists the
domain, so its owner's DNS answers the checks): a TXT record that is not UTF-8, and an answer
dnspython refuses (YXDOMAIN). Each is one failed or unmatched look-up (DnsError, or a value that
never equals a token), never an exception that ends the tenant's pass: before, every pass of that
tenant failed, its status and metrics froze, and the claims of its other domains never expired.

The name server is a stand-in (a few lines answering over a real UDP socket, as a customer's
hostile server would); the resolver, its parsing and the errors are the real ones.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest

from tenantry.adapters.dns import DnsError, Resolver


def _answer(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text()
    if name.startswith("_tenantry-challenge.latin1.example") and question.rdtype == dns.rdatatype.TXT:
        rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
        rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [b"\xff\xfe not utf-8"]), 60)
        response.answer.append(rrset)
    elif name.startswith("yx.example"):
        response.set_rcode(dns.rcode.YXDOMAIN)
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


@pytest.fixture
def name_server() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(_answer(dns.message.from_wire(data)).to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def test_a_txt_record_that_is_not_utf8_is_read_not_raised(name_server: int) -> None:
    resolver = Resolver([("127.0.0.1", name_server)], timeout=2)
    values = asyncio.run(resolver.lookup("_tenantry-challenge.latin1.example", "TXT"))
    assert values == ["\ufffd\ufffd not utf-8"]
    assert asyncio.run(resolver.lookup("nothing.example", "CNAME")) == []


def test_an_answer_dnspython_refuses_is_a_dns_error(name_server: int) -> None:
    resolver = Resolver([("127.0.0.1", name_server)], timeout=2)
    with pytest.raises(DnsError) as raised:
        asyncio.run(resolver.lookup("yx.example", "CNAME"))
    assert raised.value.reason == "ResolverFailed" and "yx.example CNAME" in str(raised.value)


def test_a_custom_domain_leaves_room_for_its_challenge_name() -> None:
    """_tenantry-challenge.<domain> must be a DNS name too (at most 253 characters): dnspython
    refused the look-up of a longer one (NameTooLong) on every pass."""
    from pydantic import ValidationError

    from tenantry.api.tenant import CHALLENGE_PREFIX, CUSTOM_DOMAIN_MAX_LENGTH, TenantSpec

    def spec(domain: str) -> dict:
        return {"company": "K", "contact": {"name": "K", "email": "k@k.de"},
                "plan": {"featureSet": "business", "seats": 5}, "domains": [domain]}

    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * (CUSTOM_DOMAIN_MAX_LENGTH - 3 * 64 - 3), "de"])
    assert len(longest) == CUSTOM_DOMAIN_MAX_LENGTH and len(CHALLENGE_PREFIX + longest) == 253
    TenantSpec.model_validate(spec(longest))
    with pytest.raises(ValidationError, match="at most 233 characters"):
        TenantSpec.model_validate(spec("y" + longest))
