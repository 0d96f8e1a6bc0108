"""Write docs/conventions.md from the code (``descentlab.optim.conventions.markdown``).

    python tools/make_conventions_doc.py

tests/test_conventions.py fails when the committed file differs from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from descentlab.optim.conventions import markdown

TARGET = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"

if __name__ == "__main__":
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(markdown(), encoding="utf-8")
    print(f"wrote {TARGET}")
