"""The README's generated tables are what the code writes now (`python -m clickstream.docs` rewrites them)."""

from __future__ import annotations

import pytest

from clickstream.docs import BLOCKS, README, block, rendered


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_readme_tables_are_generated_from_the_code(name: str) -> None:
    written = block(README.read_text(), name)
    assert written is not None, f"README.md has no generated block {name!r}"
    assert written == rendered(name), "run `python -m clickstream.docs` to rewrite README.md"
