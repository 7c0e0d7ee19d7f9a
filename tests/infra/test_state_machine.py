"""The "finish image" definition: every task retries what is transient and catches the rest."""

from __future__ import annotations

import json
import re

from lightbox import errors
from lightbox_local.stack import ASL
from lightbox_local.template import resources

DEFINITION = json.loads(ASL.read_text())
TASKS = {name: s for name, s in DEFINITION["States"].items() if s["Type"] == "Task"}


def test_every_task_retries_named_errors_and_catches_everything_else() -> None:
    for name, state in TASKS.items():
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert "TransientError" in retried and "Lambda.TooManyRequestsException" in retried, name
        assert "States.ALL" not in retried, f"{name} must not retry everything"
        caught = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
        assert caught, f"{name} would end in an unhandled States.TaskFailed"
        assert state.get("TimeoutSeconds"), f"{name} needs a timeout"


def test_retried_error_names_are_lightbox_exception_classes() -> None:
    # Step Functions matches a Python Lambda's error by its exception class name.
    ours = {e for s in TASKS.values() for r in s["Retry"] for e in r["ErrorEquals"]
            if "." not in e}
    for name in ours:
        assert isinstance(getattr(errors, name, None), type), name


def test_substitutions_match_the_template() -> None:
    (machine,) = resources("AWS::Serverless::StateMachine").values()
    declared = set(machine["Properties"]["DefinitionSubstitutions"])
    used = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    assert used == declared


def test_every_state_is_reachable_and_every_next_exists() -> None:
    states = DEFINITION["States"]
    targets = {DEFINITION["StartAt"]}
    for state in states.values():
        targets |= {state.get("Next"), state.get("Default")} - {None}
        targets |= {c["Next"] for c in state.get("Choices", [])}
        targets |= {c["Next"] for c in state.get("Catch", [])}
    assert targets <= set(states)
    assert set(states) <= targets


def test_no_map_state_holds_the_fan_out() -> None:
    # 200 shots must not be held to a Map's concurrency: a function fans out.
    assert all(s["Type"] != "Map" for s in DEFINITION["States"].values())


def test_a_tools_image_goes_to_the_tool_task_and_a_fit_to_upscale_comes_back_there() -> None:
    states = DEFINITION["States"]
    # Route: any tool image, made or failed, goes to the Tool task (which settles both)
    tool_rules = [c for c in states["Route"]["Choices"] if c.get("StringEquals") == "tool"]
    assert tool_rules == [{"Variable": "$.image.role", "StringEquals": "tool", "Next": "Tool"}]
    assert states["Tool"]["Parameters"] == {"action": "tool", "image.$": "$.image"}
    # then either the job's output is settled (AfterSettle may finish the job) or the
    # upscaler is asked, and its webhook starts a new execution: this one ends
    after = states[states["Tool"]["Next"]]
    assert after["Default"] == "AfterSettle"
    (upscale,) = after["Choices"]
    assert (upscale["Variable"], upscale["Next"]) == ("$.settle.upscale", "UpscaleTool")
    assert states["UpscaleTool"]["Parameters"] == {"tool.$": "$.settle"}
    assert states["UpscaleTool"].get("End") is True
