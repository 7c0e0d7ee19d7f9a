"""The packaging tier: every function imports from its own package and nothing else.

For each function of template.yaml (read there, so a new function is covered without
editing this file): its layers are built for this machine by their own Makefiles
(`lightbox_local.packaging`, the same files `sam build` uses), and its handler is
imported in a fresh process that has only the standard library, its CodeUri and those
layers on the path: no site-packages, no checkout. An ImportError fails the tier; the
import time (the cold start) is printed.
"""

from __future__ import annotations

import statistics
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lightbox.config import Settings
from lightbox_local.lambdas import HandlerError, LocalLambda, _Worker
from lightbox_local.packaging import FunctionSpec, functions, package_path

FUNCTIONS = functions()
#: Settings every function may read at cold start (the laptop runtime sets real ones).
ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "packaging",
    "AWS_SECRET_ACCESS_KEY": "packaging",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def _stand_in(name: str) -> str:
    """A value of the right type for a setting: its default, or a placeholder."""
    for field in Settings.model_fields.values():
        if field.alias == name and field.default not in (None, ""):
            return str(field.default)
    return f"packaging-{name.lower()}"


def _environment(function: FunctionSpec) -> dict[str, str]:
    """The function's own variables (from the template) with stand-in values, and what
    Lambda sets; tracing stays on, as in AWS, so the X-Ray SDK must be in the layers."""
    names = {name: _stand_in(name) for name in function.environment}
    runtime = LocalLambda({function.name: function},
                          environment={**names, **ENVIRONMENT})
    return runtime._function_environment(function)


@pytest.mark.packaging
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_handler_imports_with_only_its_layers(name: str) -> None:
    function = FUNCTIONS[name]
    path = package_path(function)
    timings = []
    for _ in range(4):  # the first run warms the page cache; the next three are timed
        try:
            worker = _Worker(function, path, _environment(function), stderr=None)
        except HandlerError as error:
            pytest.fail(f"{name}: {error.payload['errorType']}: {error.payload['errorMessage']}")
        timings.append(worker.init_ms)
        worker.stop()
    print(f"{name}: handler imports in {statistics.median(timings[1:]):.0f} ms "
          f"(median of 3; layers {', '.join(function.layers)})")


@pytest.mark.packaging
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_package_in_a_functions_layers_has_its_dependencies_there(name: str) -> None:
    function = FUNCTIONS[name]
    layers = [str(path) for path in package_path(function)[1:]]
    installed = {canonicalize_name(d.metadata["Name"]): d for d in distributions(path=layers)}
    environment = {"python_version": "3.12", "sys_platform": "linux",
                   "platform_system": "Linux", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "extra": ""}
    missing = []
    for dist_name, dist in installed.items():
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            if canonicalize_name(requirement.name) not in installed:
                missing.append(f"{dist_name} needs {requirement.name}")
    assert not missing, f"{name}: " + "; ".join(sorted(missing))


@pytest.mark.packaging
def test_a_package_outside_the_layers_is_an_import_error_as_in_aws(tmp_path: Path) -> None:
    # Given a function whose code imports OpenCV, deployed with the core layers only
    (tmp_path / "app.py").write_text("import cv2\n\ndef handler(event, context):\n    return 1\n")
    function = FunctionSpec(logical_id="Probe", name="probe", code_dir=tmp_path,
                            handler="app.handler", layers=("CoreLayer", "LightboxLayer"),
                            timeout=3, memory=128, environment=(), events={})
    # When its runtime starts (the test virtualenv has OpenCV; the function does not)
    with pytest.raises(HandlerError) as failed:
        _Worker(function, package_path(function), _environment(function), stderr=None)
    # Then it fails as Lambda does
    assert failed.value.payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'cv2'" in failed.value.payload["errorMessage"]
