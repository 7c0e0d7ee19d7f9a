"""Integration fixtures: the one table in moto, built from template.yaml.

Why requests are serialised: moto applies a TransactWriteItems by copying the table,
writing, and putting the copy back if a condition fails, with no lock. Two threads
can then undo each other's committed writes, which DynamoDB never does (each request
is atomic, transactions are serialisable). `AtomicRequests` runs one request at a
time, giving moto DynamoDB's per-request atomicity; the races the tests are about
(read, decide, conditional write from many threads) still interleave between
requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lightbox.adapters.ledger import CreditLedger
from lightbox_local.template import create_table

REGION = "us-east-1"
TABLE = "lightbox-test"


class AtomicRequests:
    """A boto3 client whose API calls run one at a time (see the module docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


class FaultyClient:
    """Wraps the table's client and breaks its first TransactWriteItems in one of three ways.

    throttled   DynamoDB refuses the write (nothing applied)
    cancelled   a cancellation with no reasons, as a conflicting write causes
    lost_reply  the write commits but the answer never arrives (a timeout)
    """

    def __init__(self, client: Any, fault: str) -> None:
        self._client = client
        self.fault = fault
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if not self.armed:
            return self._client.transact_write_items(**kwargs)
        self.armed = False
        if self.fault == "throttled":
            raise _client_error("ProvisionedThroughputExceededException")
        if self.fault == "cancelled":
            raise _client_error("TransactionCanceledException")
        self._client.transact_write_items(**kwargs)
        raise _client_error("InternalServerError")


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, "TransactWriteItems")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def dynamodb(aws_env: None) -> Iterator[AtomicRequests]:
    """A moto DynamoDB client with the template's table created."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        yield AtomicRequests(client)


@pytest.fixture
def ledger(dynamodb: AtomicRequests) -> CreditLedger:
    return CreditLedger(dynamodb, TABLE)


@pytest.fixture
def assert_books(ledger: CreditLedger) -> Callable[[str], None]:
    """A check that a user's ledger entries sum to their account and nothing is negative."""

    def check(user_id: str) -> None:
        account = ledger.balance(user_id)
        entries = ledger.entries(user_id)
        assert account.balance >= 0 and account.reserved >= 0 and account.debt >= 0
        assert sum(e.amount for e in entries) == account.balance
        assert sum(e.reserved_change for e in entries) == account.reserved
        assert sum(e.debt_change for e in entries) == account.debt

    return check
