"""Print a ``descentlab bench --json`` record as the Markdown table used in BENCHMARKS.md.

    python tools/bench_table.py results.json
"""

from __future__ import annotations

import json
import sys


def _ms(value):
    return "–" if value is None else f"{value:.1f}"


def _x(num, den):
    return "–" if num is None else f"{num / den:.2f}x"


def main(path: str) -> None:
    with open(path) as f:
        result = json.load(f)
    m, s = result["machine"], result["settings"]
    print(f"{s['size']:,} {s['dtype']} elements, {m['threads']} threads, {m['cpu']}, "
          f"numba {m['numba']}, numpy {m['numpy']}, torch {m['torch']}; "
          f"triad {result['triad_gb_per_s']:.1f} GB/s; median of {s['repeats']} steps.\n")
    print("| optimizer | B/elem | ms | GB/s | % of triad floor | torch single ms | torch foreach "
          "ms | torch fused ms | foreach / ours | fused / ours | many / one |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in result["rows"]:
        t = r.get("torch_ms") or {"single": None, "foreach": None, "fused": None}
        print(f"| {r['optimizer']} | {r['bytes_per_element']} | {r['step_ms']:.1f} | "
              f"{r['gb_per_s']:.1f} | {r['floor_percent']:.0f} % | {_ms(t['single'])} | "
              f"{_ms(t['foreach'])} | {_ms(t['fused'])} | {_x(t['foreach'], r['step_ms'])} | "
              f"{_x(t['fused'], r['step_ms'])} | {r['many_over_one']:.2f} "
              f"({r['many_ms']:.2f} / {r['one_ms']:.2f} ms) |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
