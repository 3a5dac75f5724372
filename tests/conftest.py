"""Shared pytest options and fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import BUNDLED_REPLAY
from registry_sync.replay import ReplayServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live",
        action="store_true",
        default=False,
        help="also run tests that talk to the real registries (never in CI)",
    )
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite parser goldens (tests/fixtures/*/golden/) from the current parsers",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was started with --update-golden."""
    return bool(request.config.getoption("--update-golden"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `live` need --live: CI and a plain `pytest` never touch the network."""
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="talks to the real registries: run with --live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    """The replay server over the bundled set; fails the test if a handler raised."""
    with ReplayServer(BUNDLED_REPLAY) as srv:
        yield srv
    assert srv.errors == []


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@pytest.fixture(autouse=True)
def no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: outside `--live`, resolving or connecting to anything but
    loopback fails at once, as on a machine with no network (and no test can pass by luck)."""
    if request.config.getoption("--live"):
        return
    import socket

    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK_NAMES and not name.startswith("127."):
            raise socket.gaierror(socket.EAI_NONAME, f"tests do not resolve {name}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect test harness (ephemeral server, fresh PREFECT_HOME) for every flow test of
    the session: it takes about 10 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    mp = pytest.MonkeyPatch()
    for key, value in {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    }.items():
        mp.setenv(key, value)
    with prefect_test_harness(server_startup_timeout=120):  # generous on a loaded 2-core CI
        yield
    mp.undo()
