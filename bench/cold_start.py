"""Cold starts: how long each function's handler takes to import, from its own package.

    .venv/bin/python bench/cold_start.py [--runs 5]

For every function of template.yaml: its layers built for this machine by their own
Makefiles, its handler imported in a fresh process with nothing else on the path (the
laptop runtime's worker, as tests/packaging does), `--runs` times after one unmeasured
run that warms the page cache; the median is the figure. In AWS the init phase runs
on a full core, as here. Targets (issue "Deployable for real"): 300 ms for every
handler, 600 ms for the image-checking functions. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The functions that judge images (OpenCV, numpy, Pillow): the 600 ms bar.
IMAGE_CHECKING = {"check_shot", "settle_shot", "upload_received"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.packaging.test_imports import _environment

    from lightbox_local.lambdas import HandlerError, _Worker
    from lightbox_local.packaging import functions, package_path

    figures: dict[str, float] = {}
    print(f"{'function':<18} {'median ms':>9} {'min':>6} {'max':>6} {'bar':>5}  layers")
    over = []
    for name, function in sorted(functions().items()):
        path = package_path(function)
        timings = []
        for _ in range(args.runs + 1):
            try:
                worker = _Worker(function, path, _environment(function), stderr=None)
            except HandlerError as error:
                print(f"{name}: {error.payload['errorMessage']}", file=sys.stderr)
                return 1
            timings.append(worker.init_ms)
            worker.stop()
        timings = timings[1:]
        median = statistics.median(timings)
        bar = 600 if name in IMAGE_CHECKING else 300
        if median > bar:
            over.append(name)
        figures[name] = round(median, 1)
        print(f"{name:<18} {median:>9.0f} {min(timings):>6.0f} {max(timings):>6.0f} {bar:>5}  "
              f"{', '.join(function.layers)}")
    print("every handler within its bar" if not over else f"over the bar: {', '.join(over)}")
    print(json.dumps({"bench": "cold_start", "runs": args.runs, "import_ms": figures,
                      "over_bar": over}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
