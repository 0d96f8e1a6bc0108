"""Write the README's pictures from a demo's results folder.

    descentlab demo --out descentlab-demo
    python tools/readme_figures.py descentlab-demo

writes docs/images/demo_initialisation.png (gradient norm per layer at initialisation) and
docs/images/demo_update_ratios.png (the optimizers' update-to-weight ratio per layer), drawn by
the report's own figure functions from the folder's results.sqlite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from descentlab.lab import Store
from descentlab.report import figures, read

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a folder written by descentlab demo")
    args = parser.parse_args()
    with Store(args.folder) as store:
        results = read(store)
    IMAGES.mkdir(parents=True, exist_ok=True)
    (IMAGES / "demo_initialisation.png").write_bytes(figures.initial_profile(results.runs))
    (IMAGES / "demo_update_ratios.png").write_bytes(figures.update_ratios(
        results.of("optimizers"), "10x256 sigmoid network: update-to-weight ratio per layer"))
    print(f"wrote {IMAGES}/demo_initialisation.png and demo_update_ratios.png")


if __name__ == "__main__":
    main()
