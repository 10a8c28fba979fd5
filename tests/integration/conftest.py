"""Every test under tests/integration needs real processes: mark them all ``integration`` here, once."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects on the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each collected test that lives in this folder (the hook sees the whole session's items)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
