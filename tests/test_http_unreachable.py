"""A host that answers nothing is not asked again and again in one run."""

from __future__ import annotations

import socket

import pytest

from registry_sync.errors import TransientFetchError
from registry_sync.http import UNREACHABLE_AFTER, Http
from registry_sync.settings import HttpSettings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_host_is_not_asked_again_this_run() -> None:
    url = f"http://127.0.0.1:{closed_port()}/jrct/latest-detail/"
    http = Http(HttpSettings(max_retries=1, backoff_base=0.0))
    try:
        for n in range(UNREACHABLE_AFTER):
            with pytest.raises(TransientFetchError, match="cannot connect"):
                http.get(f"{url}jRCT205319008{n}", registry="jrct", accept="text/html")
        sent = http.requests_sent
        assert sent == 2 * UNREACHABLE_AFTER + 1  # each tried twice, and robots.txt once
        with pytest.raises(TransientFetchError, match="did not answer 2 requests in a row"):
            http.get(f"{url}jRCT2053190089", registry="jrct", accept="text/html")
        assert http.requests_sent == sent  # nothing sent
    finally:
        http.close()
