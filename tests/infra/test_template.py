"""template.yaml: lints clean, transforms with the SAM translator, and stays least-privilege."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lightbox_local.template import TEMPLATE, load_template, resources

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_reports_no_errors() -> None:
    # Given the template as deployed
    # When cfn-lint checks it (offline, with its bundled specs)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(TEMPLATE)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    # Then it reports no errors (E...) and no warnings (W...)
    assert result.returncode == 0, result.stdout + result.stderr


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; the template uses none by name."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    # The translator builds ARNs for the region it deploys to.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _transformed() -> dict[str, Any]:
    from samtranslator.public.translator import ManagedPolicyLoader  # noqa: F401 - API check
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(TEMPLATE.read_text())
    # `sam package` replaces local code paths with S3 URIs before the transform runs.
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(uri), str):
                props[uri] = f"s3://packaged-artifacts/{props[uri].strip('/')}"
    return transform(template, {}, _NoManagedPolicies())


def test_sam_translator_transforms_the_template() -> None:
    # When the SAM translator expands the template (what `sam deploy` does in CloudFormation)
    output = _transformed()
    kinds = {r["Type"] for r in output["Resources"].values()}
    # Then it yields plain CloudFormation with the pieces Lightbox needs
    assert "AWS::Serverless::Function" not in kinds
    for needed in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine",
                   "AWS::ApiGatewayV2::Api", "AWS::DynamoDB::Table", "AWS::S3::Bucket",
                   "AWS::Scheduler::Schedule", "AWS::Lambda::LayerVersion"):
        assert needed in kinds, needed


def test_start_execution_is_allowed_on_the_one_state_machine_only() -> None:
    output = _transformed()
    statements = []
    for resource in output["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    starts = [s for s in statements if "states:StartExecution" in json.dumps(s.get("Action"))]
    assert starts, "some function must be allowed to start executions"
    for statement in starts:
        text = json.dumps(statement["Resource"])
        assert "FinishImageStateMachine" in text and "*" not in text.replace('"*"', "")
    # and no statement anywhere grants a wildcard action
    for statement in statements:
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        assert "*" not in actions


def test_every_function_and_the_state_machine_log_to_groups_with_a_retention() -> None:
    output = _transformed()["Resources"]
    groups = {name: r for name, r in output.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert set(groups) == {"FunctionLogs", "StateMachineLogs"}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    functions = [r for r in output.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == len(resources("AWS::Serverless::Function"))
    for function in functions:
        logging = function["Properties"]["LoggingConfig"]
        assert logging == {"LogGroup": {"Ref": "FunctionLogs"}, "LogFormat": "JSON"}
    machine = output["FinishImageStateMachine"]["Properties"]["LoggingConfiguration"]
    assert machine["Level"] == "ERROR" and machine["IncludeExecutionData"] is False
    assert machine["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["StateMachineLogs", "Arn"]}}}]


def test_alarms_watch_images_payments_uploads_the_sweeper_and_the_api_and_notify_one_topic(
) -> None:
    alarms = resources("AWS::CloudWatch::Alarm")
    watched = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlertsTopic"}]
        assert props["TreatMissingData"] == "notBreaching"
        for dimension in props["Dimensions"]:
            if isinstance(dimension["Value"], dict):
                watched.add(dimension["Value"]["Ref"])
    assert watched == {"FinishImageStateMachine", "HttpApi", "UploadReceivedFunction",
                       "SweeperFunction", "StripeWebhookFunction"}
    email = resources("AWS::SNS::Subscription")["AlertsEmail"]
    assert email["Condition"] == "HasAlarmEmail"


def test_every_function_folder_has_a_template_entry_and_a_thin_handler() -> None:
    declared = {Path(r["Properties"]["CodeUri"]).name
                for r in resources("AWS::Serverless::Function").values()}
    on_disk = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()}
    assert declared == on_disk
    for folder in on_disk:
        lines = [ln for ln in (ROOT / "functions" / folder / "app.py").read_text().splitlines()
                 if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) <= 30, f"functions/{folder}/app.py should stay a thin handler"


def test_secrets_are_named_not_given() -> None:
    template = load_template()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for function in resources("AWS::Serverless::Function").values():
        env = {**env, **((function["Properties"].get("Environment") or {}).get("Variables") or {})}
    for name in env:
        assert name.endswith("_PARAM") or not any(
            word in name for word in ("TOKEN", "SECRET", "KEY")), name
