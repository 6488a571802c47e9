"""Fixtures shared by the tests: the loopback Hugging Face Hub of tests/hub_server.py."""

from collections.abc import Iterator

import pytest
from hub_server import HubServer


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """A loopback Hub on 127.0.0.1 (ephemeral port), storage in a temporary directory; stopped after the module."""
    server = HubServer(tmp_path_factory.mktemp("hub_storage")).start()
    yield server
    server.stop()
