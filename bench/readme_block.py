"""Write a bench script's table into bench/README.md between its <!-- name --> markers."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).with_name("README.md")


def write_block(name: str, lines: list[str], heading: str) -> None:
    """Replace the block between <!-- name --> and <!-- /name -->, or append it under `heading`."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"<!-- {name} -->\n" + "\n".join(lines) + f"\n<!-- /{name} -->"
    if f"<!-- {name} -->" in text:
        text = re.sub(rf"<!-- {name} -->.*<!-- /{name} -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    README.write_text(text)
