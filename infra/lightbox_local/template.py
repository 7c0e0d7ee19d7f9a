"""Reading template.yaml, so the local stack is built from the same definitions as AWS.

The table's keys and indexes, the functions' handlers, events and environment names,
and the state machine's substitutions all come from the template; nothing about them
is repeated here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation's short-form tags as {"Fn::X": value}."""


def _tag(name: str):
    key = "Ref" if name == "Ref" else f"Fn::{name}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _name in ("Ref", "GetAtt", "Sub", "Join", "If", "Equals", "Not", "And", "Or",
              "Select", "Split", "FindInMap", "ImportValue", "Base64", "Condition",
              "GetAZs", "Cidr"):
    _CfnLoader.add_constructor(f"!{_name}", _tag(_name))


@lru_cache(maxsize=1)
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=_CfnLoader)


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: res
        for name, res in load_template()["Resources"].items()
        if res.get("Type") == kind
    }


def table_definition() -> dict[str, Any]:
    """CreateTable arguments for the one table, taken from the template."""
    (props,) = [r["Properties"] for r in resources("AWS::DynamoDB::Table").values()]
    return {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "GlobalSecondaryIndexes": props.get("GlobalSecondaryIndexes", []),
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }


def create_table(client: Any, table_name: str) -> None:
    """Create the table in a moto (or any) DynamoDB, exactly as the template defines it."""
    client.create_table(TableName=table_name, **table_definition())
