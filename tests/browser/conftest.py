"""Fixtures for browser tests: a second origin serving the customer's site."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.browser.support import HostSite, open_host_site


@pytest.fixture
async def host_site() -> AsyncIterator[HostSite]:
    async with open_host_site() as site:
        yield site
