from __future__ import annotations

import pytest

from murmur.enrich.neural.embedder import E5Embedder
from murmur.testing import has_shared_data


@pytest.fixture(scope="session")
def embedder() -> E5Embedder:
    """The process-wide e5 embedder (loads once for all neural-tier tests)."""
    from murmur.enrich.neural.components import default_embedder

    return default_embedder()


@pytest.fixture(scope="session")
def need_shared() -> None:
    if not has_shared_data():
        pytest.skip("../shared/data is absent (real posts and labelled sets live there)")
