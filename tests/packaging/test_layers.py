"""What each function is deployed with: its layers, their pins, the runtime, the sizes.

These read the template and the layers' files; `test_sizes_of_the_sam_build` reads what
`make build` (plain `sam build`) wrote, which `make test` runs first.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from lightbox_local.packaging import SIZE_LIMIT_BYTES, functions, layer_sources, sizes
from lightbox_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _layer_packages(layer_id: str) -> set[str]:
    requirements = layer_sources()[layer_id] / "requirements.txt"
    if not requirements.exists():
        return set()
    return {canonicalize_name(line.split("#")[0].strip())
            for line in requirements.read_text().splitlines()
            if line.split("#")[0].strip()}


def test_every_layer_is_built_by_its_makefile_from_the_lock() -> None:
    template = load_template()
    pins = _lock()
    for layer_id, folder in layer_sources().items():
        resource = template["Resources"][layer_id]
        assert resource["Metadata"]["BuildMethod"] == "makefile", layer_id
        assert f"build-{layer_id}:" in (folder / "Makefile").read_text(), layer_id
        # names only: the version of every package a layer installs is the lock's
        for package in _layer_packages(layer_id):
            assert package in pins, f"{layer_id}: {package} is not pinned in requirements.lock"
        requirements = folder / "requirements.txt"
        if requirements.exists():
            assert "==" not in requirements.read_text(), f"{layer_id}: versions come from the lock"


def test_no_package_is_in_two_layers_of_one_function() -> None:
    for name, function in functions().items():
        seen: dict[str, str] = {}
        for layer_id in function.layers:
            for package in _layer_packages(layer_id):
                assert package not in seen, (
                    f"{name}: {package} is in both {seen[package]} and {layer_id}")
                seen[package] = layer_id


def test_the_tests_run_on_the_lambda_runtimes_python() -> None:
    template = load_template()
    runtime = template["Globals"]["Function"]["Runtime"]
    assert runtime == f"python{sys.version_info.major}.{sys.version_info.minor}"
    for resource in template["Resources"].values():
        assert resource["Properties"].get("Runtime", runtime) == runtime
        for compatible in resource["Properties"].get("CompatibleRuntimes", [runtime]):
            assert compatible == runtime
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]


def test_every_aws_client_the_code_makes_keeps_its_api_model_in_the_core_layer() -> None:
    kept = re.search(r"^AWS_SERVICES := (.+)$",
                     (ROOT / "layers" / "core" / "Makefile").read_text(), re.MULTILINE)
    assert kept, "layers/core/Makefile names the AWS services it keeps"
    services = set(kept.group(1).split())
    made = set()
    for source in (ROOT / "shared" / "lightbox").rglob("*.py"):
        made |= set(re.findall(r"""(?:boto_client|boto3\.client)\(\s*["']([a-z0-9-]+)["']""",
                               source.read_text()))
    assert made, "the code makes AWS clients"
    assert made <= services, f"clients without an API model in the layer: {made - services}"


def test_make_build_prints_every_functions_size() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightbox_local.packaging", "sizes", str(BUILD)],
        capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in functions(load_template(BUILD / "template.yaml"), root=BUILD):
        assert name in result.stdout


@pytest.fixture(scope="module")
def sam_build() -> Path:
    if not (BUILD / "template.yaml").exists():
        pytest.fail("no sam build output: run `make build` (make test runs it first)")
    return BUILD


def test_sizes_of_the_sam_build(sam_build: Path) -> None:
    measured = sizes(sam_build)
    assert len(measured) == len(functions())
    for name, size in sorted(measured.items()):
        print(f"{name}: {size / 1e6:.1f} MB")
        assert size <= SIZE_LIMIT_BYTES, f"{name} is {size / 1e6:.1f} MB unzipped"


def test_the_sam_build_is_for_arm64_linux(sam_build: Path) -> None:
    numpy = next((sam_build / "NumpyLayer" / "python" / "numpy" / "_core").glob("_multiarray_umath*.so"))
    assert "aarch64-linux-gnu" in numpy.name
