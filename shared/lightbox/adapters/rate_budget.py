"""The shared Replicate budget: one token bucket in DynamoDB for the whole deployment.

Replicate limits how many predictions an account may create per minute. Every
prediction Lightbox creates takes a token first; the bucket refills continuously at
the configured rate and holds at most one minute's worth. A caller that gets fewer
tokens than it asked for makes what it got and comes back later (the state machine
waits for free); it never spins.

Fairness between users comes from the callers: a fan-out takes at most one chunk per
turn, so a 200-shot job leaves room for a 1-shot job that arrives after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lightbox.adapters.dynamo import is_condition_failure, serialize, translate_fault
from lightbox.errors import RateBudgetExhausted, TransientError

_KEY = {"pk": {"S": "RATE#replicate"}, "sk": {"S": "RATE"}}


@dataclass(frozen=True)
class Grant:
    granted: int
    #: Seconds until the bucket holds another token (0 when some are left).
    retry_after: float


class RateBudget:
    def __init__(self, client: Any, table_name: str, *, per_minute: int) -> None:
        self.client = client
        self.table = table_name
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)

    def take(self, wanted: int, *, now: float | None = None) -> Grant:
        """Take up to `wanted` tokens atomically (optimistic concurrency, a few tries)."""
        if wanted <= 0:
            return Grant(0, 0.0)
        for _ in range(10):
            moment = time.time() if now is None else now
            tokens, stamp = self._read(moment)
            available = min(self.capacity, tokens + (moment - stamp) * self.rate)
            granted = min(wanted, int(available))
            left = available - granted
            if self._write(left, moment, expected_stamp=stamp):
                retry_after = 0.0 if left >= 1 else (1 - left) / self.rate
                return Grant(granted, retry_after)
        raise TransientError("The prediction budget is contended; try again.")

    def give_back(self, count: int) -> None:
        """Return tokens a caller took but did not use (e.g. its create failed)."""
        if count <= 0:
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_KEY,
                UpdateExpression="ADD tokens :n",
                ExpressionAttributeValues=serialize({":n": count}),
            )
        except ClientError as error:
            raise translate_fault(error) from error

    def _read(self, now: float) -> tuple[float, float]:
        try:
            item = self.client.get_item(TableName=self.table, Key=_KEY, ConsistentRead=True)
        except ClientError as error:
            raise translate_fault(error) from error
        found = item.get("Item")
        if not found:
            return self.capacity, now
        return float(found["tokens"]["N"]), float(found["stamp"]["N"])

    def _write(self, tokens: float, stamp: float, *, expected_stamp: float) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **_KEY,
                    "tokens": {"N": f"{tokens:.6f}"},
                    "stamp": {"N": f"{stamp:.6f}"},
                },
                ConditionExpression="attribute_not_exists(pk) OR stamp = :expected",
                ExpressionAttributeValues={":expected": {"N": f"{expected_stamp:.6f}"}},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise translate_fault(error) from error
        return True

    def take_one(self) -> None:
        """Take a single token or raise RateBudgetExhausted (the state machine retries later)."""
        if self.take(1).granted < 1:
            raise RateBudgetExhausted("The prediction budget is spent for now.")
