from __future__ import annotations

from collections.abc import Iterator

import pytest
from archive_helpers import META

from evolve.archive import Archive


@pytest.fixture
def archive(tmp_path) -> Iterator[Archive]:
    with Archive.create(tmp_path / "run" / "archive", META) as a:
        a.publish_interval_s = 0.0  # branches follow every batch, so tests can look at each one
        yield a
