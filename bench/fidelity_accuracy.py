"""How well the product-fidelity check tells good shots from bad ones, and how fast.

Runs every case of tests/unit/test_fidelity.py (real product photos composed into
shots that must pass or fail) through `check_shot_bytes`, on one core, and prints:

- a table: each case, expected and got, the main measures, and the reasons given;
- the true-pass rate (good shots passed) and the false-pass rate (bad shots passed);
- the time per check in CPU time of one thread (median, 95th percentile, max; the
  wall-clock median beside it, which other work on the machine inflates); the
  cutout's one-off preparation is timed apart, as the pipeline checks many shots per
  cutout;
- last, one JSON object with the figures.

Run from the repository root: `.venv/bin/python bench/fidelity_accuracy.py`.
"""

from __future__ import annotations

import os

# One core, as in a Lambda with the smallest CPU share: set before numpy and OpenCV load.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import cv2

from lightbox.domain.fidelity import ShotCheck, check_shot_bytes

REPO = Path(__file__).resolve().parents[1]
SHOWN = (
    "delta_e",
    "matched_share",
    "detail_lost_share",
    "shape_iou",
    "product_scale",
    "extra_object_share",
    "faces",
)


def load_cases_module() -> ModuleType:
    """The test module builds the cases; the bench reuses it so the two cannot drift."""
    path = REPO / "tests" / "unit" / "test_fidelity.py"
    spec = importlib.util.spec_from_file_location("fidelity_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timed_check(case: object, cases: ModuleType) -> tuple[ShotCheck, float, float]:
    """The verdict, the CPU milliseconds it took (one thread: one core's work, steady
    on a shared machine) and the wall-clock milliseconds."""
    cutout = cases.load_cutout(case.product)
    wall, cpu = time.perf_counter(), time.process_time()
    verdict = check_shot_bytes(case.shot, cutout, **case.options)
    return (verdict, (time.process_time() - cpu) * 1000.0, (time.perf_counter() - wall) * 1000.0)


def format_row(product: str, case: object, verdict: ShotCheck, millis: float) -> str:
    expected = "pass" if case.expect_pass else "fail"
    got = "pass" if verdict.passed else "fail"
    mark = "ok" if expected == got else "MISS"
    shown = " ".join(
        f"{name}={verdict.measures[name]:.3g}" if name in verdict.measures else f"{name}=-"
        for name in SHOWN
    )
    reasons = "; ".join(verdict.reasons) or "-"
    return (
        f"{product:26} {case.name:24} {expected:4} {got:4} {mark:4} {millis:6.0f} "
        f"{shown}  | {reasons}"
    )


def main() -> None:
    cv2.setNumThreads(1)
    cases = load_cases_module()
    keys = cases.all_case_keys()

    # The cutout's preparation (features, silhouette) happens once per cutout.
    preparation = {}
    for product in dict.fromkeys(product for product, _ in keys):
        first = cases.build_case(product, next(name for p, name in keys if p == product))
        cold = timed_check(first, cases)[1]
        warm = timed_check(first, cases)[1]
        preparation[product] = cold - warm

    print(f"{'product':26} {'case':24} {'want':4} {'got':4} {'':4} {'ms':>6} measures  | reasons")
    good = bad = good_passed = bad_passed = 0
    millis: list[float] = []
    wall_millis: list[float] = []
    for product, name in keys:
        case = cases.build_case(product, name)
        verdict, spent, elapsed = timed_check(case, cases)
        millis.append(spent)
        wall_millis.append(elapsed)
        print(format_row(product, case, verdict, spent))
        if case.expect_pass:
            good += 1
            good_passed += verdict.passed
        else:
            bad += 1
            bad_passed += verdict.passed

    millis.sort()
    figures = {
        "cases": len(keys),
        "good_cases": good,
        "bad_cases": bad,
        "true_pass_rate": round(good_passed / good, 4),
        "false_pass_rate": round(bad_passed / bad, 4),
        "ms_per_check_median": round(statistics.median(millis), 1),
        "ms_per_check_p95": round(millis[int(0.95 * (len(millis) - 1))], 1),
        "ms_per_check_max": round(millis[-1], 1),
        "ms_per_check_wall_median": round(statistics.median(wall_millis), 1),
        "ms_cutout_preparation_median": round(statistics.median(preparation.values()), 1),
    }
    print()
    print(
        f"true-pass rate (good shots passed): {good_passed}/{good} = "
        f"{figures['true_pass_rate']:.1%}"
    )
    print(
        f"false-pass rate (bad shots passed): {bad_passed}/{bad} = {figures['false_pass_rate']:.1%}"
    )
    print(
        f"time per check on one core (CPU): median {figures['ms_per_check_median']} ms, "
        f"p95 {figures['ms_per_check_p95']} ms, max {figures['ms_per_check_max']} ms "
        f"(+ {figures['ms_cutout_preparation_median']} ms once per cutout); wall-clock "
        f"median {figures['ms_per_check_wall_median']} ms"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
