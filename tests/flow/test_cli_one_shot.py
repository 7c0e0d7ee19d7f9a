"""`lightbox shoot` with no stack running: the command starts its own, as a newcomer runs it.

It runs in a process of its own (one local stack per process: moto's backends are the
process's), exactly as typed in a shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flow.conftest import COFFEE

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def test_a_fresh_stack_makes_a_catalogue_avatars_portrait_for_its_first_shoot(
    tmp_path: Path,
) -> None:
    # Given no running stack, and a catalogue avatar whose portrait nobody has made
    environment = {k: v for k, v in os.environ.items() if k != "LIGHTBOX_PORT"}
    lightbox = Path(sys.executable).with_name("lightbox")
    # When a shop shoots a "with a model" scene with that avatar from the command line
    result = subprocess.run(
        [str(lightbox), "shoot", str(COFFEE), "--user", "one-shot-shop", "--buy", "starter",
         "--scenes", "with-model-holding", "--avatar", "c005", "--out", str(tmp_path)],
        capture_output=True, text=True, env=environment, timeout=600, check=False,
    )
    # Then the portrait is made first and the shot delivered, instead of a 409
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Made the portrait of avatar c005" in result.stdout
    assert list(tmp_path.rglob("*.jpg")) or list(tmp_path.rglob("*.png"))
