"""Each function's deployment package: as `sam build` makes it, and as the laptop runs it.

A function is its CodeUri plus the layers template.yaml attaches to it (the Globals'
first, then its own). Every layer is built by its own Makefile (layers/layer.mk):
`sam build` runs it for arm64, and this module runs the same target for this machine
(LAYER_PLATFORM=host), in a copy of the layer's folder as `sam build` does, into a
cache under .build/ that is rebuilt when anything the layer is made from changes.

The laptop runtime (`lightbox_local.lambdas`) starts each function's workers with
exactly these folders on the path and no site-packages, so a package missing from a
function's layers fails on the laptop as it would in AWS.

    python -m lightbox_local.packaging sizes .aws-sam/build   # each function's size
    python -m lightbox_local.packaging build                  # the host layers
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightbox_local.template import ROOT, load_template

#: Lambda's limit is 250 MB unzipped for a function with its layers; Lightbox keeps a
#: fifth of it free.
SIZE_LIMIT_BYTES = 200 * 10**6
CACHE = ROOT / ".build" / "layers"


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function, as the template declares it."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    layers: tuple[str, ...]
    timeout: int
    memory: int
    environment: tuple[str, ...]
    events: dict[str, Any]
    reserved_concurrency: int | None = None


def functions(template: dict[str, Any] | None = None,
              root: Path = ROOT) -> dict[str, FunctionSpec]:
    """Every function of the template, keyed by its folder name (functions/<name>)."""
    template = template or load_template()
    defaults = (template.get("Globals") or {}).get("Function") or {}
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        code_dir = (root / props["CodeUri"]).resolve()
        environment = set((defaults.get("Environment") or {}).get("Variables") or {})
        environment |= set((props.get("Environment") or {}).get("Variables") or {})
        layers = [*(defaults.get("Layers") or []), *(props.get("Layers") or [])]
        spec = FunctionSpec(
            logical_id=logical_id,
            name=Path(props["CodeUri"]).name,
            code_dir=code_dir,
            handler=props.get("Handler", defaults.get("Handler", "app.handler")),
            layers=tuple(_layer_id(layer) for layer in layers),
            timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
            memory=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            environment=tuple(sorted(environment)),
            events=props.get("Events") or {},
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
        )
        found[spec.name] = spec
    return found


def _layer_id(reference: Any) -> str:
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    raise ValueError(f"a function's layer must be !Ref to a layer of the template: {reference!r}")


def layer_sources(template: dict[str, Any] | None = None,
                  root: Path = ROOT) -> dict[str, Path]:
    """Every AWS::Serverless::LayerVersion's folder (ContentUri), by logical id."""
    template = template or load_template()
    return {
        logical_id: (root / resource["Properties"]["ContentUri"]).resolve()
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::LayerVersion"
    }


# --- host builds, for the laptop ------------------------------------------------------------


def host_layer(logical_id: str, python: str | None = None) -> Path:
    """The layer built for this machine (its `python` folder), built first if stale."""
    source = layer_sources()[logical_id]
    python = python or sys.executable
    digest = _inputs_digest(source, logical_id, python)
    home = CACHE / "host" / logical_id
    site = home / "python"
    stamp = home / ".inputs"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # `lightbox dev` and a test run may build at once
        if stamp.exists() and stamp.read_text() == digest and site.is_dir():
            return site
        built = _make_layer(source, logical_id, python)
        if home.exists():
            shutil.rmtree(home)
        home.parent.mkdir(parents=True, exist_ok=True)
        built.rename(home)
        stamp.write_text(digest)
    return site


def _make_layer(source: Path, logical_id: str, python: str) -> Path:
    """Run the layer's Makefile as `sam build` does: in a scratch copy of its folder."""
    out = Path(tempfile.mkdtemp(prefix=f"{logical_id}-", dir=CACHE))
    with tempfile.TemporaryDirectory(prefix="lightbox-layer-") as scratch:
        shutil.copytree(source, scratch, dirs_exist_ok=True)
        command = ["make", "--no-print-directory", "-f", str(source / "Makefile"),
                   f"build-{logical_id}", f"ARTIFACTS_DIR={out}", "LAYER_PLATFORM=host",
                   f"PYTHON={python}"]
        result = subprocess.run(command, cwd=scratch, capture_output=True, text=True,
                                check=False)
    if result.returncode != 0:
        shutil.rmtree(out, ignore_errors=True)
        raise RuntimeError(f"building layer {logical_id} failed:\n{result.stdout}{result.stderr}")
    return out


def _inputs_digest(source: Path, logical_id: str, python: str) -> str:
    """A digest of everything the layer's Makefile says it is made from."""
    listed = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", str(source / "Makefile"), "inputs"],
        cwd=source, capture_output=True, text=True, check=True,
    ).stdout.split()
    digest = hashlib.sha256(f"{logical_id} {python} {sys.version} {os.uname().machine}".encode())
    for path in sorted(Path(p).resolve() for p in listed):
        for file in _files(path):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _files(path: Path) -> Iterable[Path]:
    if path.is_file():
        yield path
        return
    for file in sorted(path.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts:
            yield file


def package_path(function: FunctionSpec) -> list[Path]:
    """What Lambda puts on sys.path for the function: its code, then its layers."""
    return [function.code_dir, *(host_layer(layer) for layer in function.layers)]


# --- sizes of a sam build ------------------------------------------------------------------


def sizes(build_dir: Path) -> dict[str, int]:
    """Bytes unzipped of each function in a `sam build` output: its folder and its layers."""
    template = load_template(build_dir / "template.yaml")
    layers = {layer_id: _tree_size(path) for layer_id, path in
              layer_sources(template, root=build_dir).items()}
    return {
        name: _tree_size(function.code_dir) + sum(layers[layer] for layer in function.layers)
        for name, function in functions(template, root=build_dir).items()
    }


def _tree_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()
               and not file.is_symlink())


def _print_sizes(build_dir: Path) -> int:
    template = load_template(build_dir / "template.yaml")
    specs = functions(template, root=build_dir)
    measured = sizes(build_dir)
    print(f"{'function':<26} {'MB unzipped':>11}  layers")
    for name in sorted(measured, key=measured.get, reverse=True):
        print(f"{name:<26} {measured[name] / 1e6:>11.1f}  {', '.join(specs[name].layers)}")
    over = [name for name, size in measured.items() if size > SIZE_LIMIT_BYTES]
    if over:
        print(f"over {SIZE_LIMIT_BYTES / 1e6:.0f} MB: {', '.join(over)}", file=sys.stderr)
        return 1
    print(f"every function is at most {SIZE_LIMIT_BYTES / 1e6:.0f} MB "
          f"(Lambda allows 250 MB with its layers)")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["sizes"] and len(argv) == 2:
        return _print_sizes(Path(argv[1]))
    if argv == ["build"]:
        for logical_id in sorted(layer_sources()):
            print(logical_id, host_layer(logical_id))
        return 0
    print(__doc__.strip().splitlines()[-2:], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
