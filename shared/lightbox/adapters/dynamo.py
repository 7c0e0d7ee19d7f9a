"""Jobs, shots and predictions in the one DynamoDB table.

Item layout (see DESIGN.md section 3):

| item       | pk               | sk            | gsi1 (owner's list)           | gsi2 (due list)                  |
| ---------- | ---------------- | ------------- | ----------------------------- | -------------------------------- |
| job        | JOB#{job}        | JOB           | USER#{user} / JOB#{created}   | DUE#{n} / {deadline}#JOB#{job}   |
| shot       | JOB#{job}        | SHOT#{shot}   |                               |                                  |
| prediction | PRED#{id}        | PRED          |                               | DUE#{n} / {deadline}#PRED#{id}   |

The gsi2 attributes exist only while the job or prediction is unfinished (a sparse
index), so the sweeper reads only what is overdue. Every write that must happen
once is conditional; a failed condition is an answer, not an error.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from lightbox.errors import InvalidInput, TransientError
from lightbox.models import (
    TOOL_OUTPUT_ID,
    Job,
    JobStatus,
    Prediction,
    PredictionOutcome,
    Shot,
    ShotCheckRecord,
    ShotStatus,
    utcnow,
)

DUE_SHARDS = 8
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


def job_key(job_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


def shot_key(job_id: str, shot_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": f"SHOT#{shot_id}"}


def prediction_key(prediction_id: str) -> dict[str, str]:
    return {"pk": f"PRED#{prediction_id}", "sk": "PRED"}


def due_shard(item_id: str) -> str:
    return f"DUE#{zlib.crc32(item_id.encode()) % DUE_SHARDS}"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def serialize(values: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON-able values to DynamoDB's typed form (floats as Decimal, sets as sets)."""
    return {k: _serializer.serialize(v) for k, v in _to_dynamo_values(values).items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo_value(_deserializer.deserialize(v)) for k, v in item.items()}


def _to_dynamo_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if value is None or (isinstance(value, set) and not value):
            continue
        if isinstance(value, set):
            out[key] = value
        else:
            out[key] = json.loads(json.dumps(value, default=str), parse_float=Decimal)
    return out


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_from_dynamo_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    return value


def to_model[M: BaseModel](item: dict[str, Any], model: type[M]) -> M:
    return model.model_validate(deserialize(item))


def is_condition_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


def translate_fault(error: ClientError) -> Exception:
    """Throttling and server faults become TransientError so the caller's retry applies."""
    code = error.response.get("Error", {}).get("Code", "")
    if code in _THROTTLING:
        return TransientError(f"DynamoDB is busy ({code}); try again.")
    return error


class Table:
    """The one table, for the stores built on it: calls with faults translated, and
    queries that follow every page."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(TableName=self.table, **kwargs)
        except ClientError as error:
            raise translate_fault(error) from error

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


class DynamoStore(Table):
    """Reads and conditional writes of Lightbox's jobs, shots and predictions."""

    # --- low level ------------------------------------------------------------------

    def _update(
        self, key: dict[str, str], *, returns: str = "NONE", **parts: Any
    ) -> dict[str, Any] | None:
        """One UpdateItem built by `_update_request` from `parts`; returns the new item
        (if asked) or None when the condition failed."""
        request = _update_request(key, **parts)
        try:
            response = self.client.update_item(TableName=self.table, ReturnValues=returns,
                                               **request)
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise translate_fault(error) from error
        return deserialize(response.get("Attributes", {})) if returns != "NONE" else {}

    def _get(self, key: dict[str, str], *, consistent: bool = True) -> dict[str, Any] | None:
        response = self._call("get_item", Key=serialize(key), ConsistentRead=consistent)
        return response.get("Item")

    def _put_new(self, item: dict[str, Any]) -> bool:
        """Put an item that must not exist yet; False if it already did."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise translate_fault(error) from error
        return True

    # --- jobs -------------------------------------------------------------------------

    def _job_item(self, job: Job) -> dict[str, Any]:
        item = job.model_dump(mode="json")
        item.update(job_key(job.job_id))
        item["delivered"] = set(job.delivered)
        item["rejected"] = set(job.rejected)
        item["gsi1pk"] = f"USER#{job.user_id}"
        item["gsi1sk"] = f"JOB#{iso(job.created_at)}#{job.job_id}"
        if not job.status.terminal:
            item["gsi2pk"] = due_shard(job.job_id)
            item["gsi2sk"] = f"{iso(job.deadline)}#JOB#{job.job_id}"
        return item

    def new_job(self, job: Job) -> dict[str, Any]:
        """A new job as an item of a transaction (the ledger writes it with the job's
        reservation): the job must not exist yet."""
        return {"Put": {"TableName": self.table, "Item": serialize(self._job_item(job)),
                        "ConditionExpression": "attribute_not_exists(pk)"}}

    def get_job(self, job_id: str) -> Job | None:
        item = self._get(job_key(job_id))
        return to_model(item, Job) if item else None

    def list_jobs(
        self, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :u AND begins_with(gsi1sk, :j)",
            "ExpressionAttributeValues": serialize({":u": f"USER#{user_id}", ":j": "JOB#"}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _job_page_start(cursor, user_id)
        response = self._call("query", **kwargs)
        jobs = [to_model(i, Job) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return jobs, json.dumps(last) if last else None

    def update_job(
        self,
        job_id: str,
        *,
        expect: Iterable[JobStatus] | None = None,
        **values: Any,
    ) -> Job | None:
        """Set fields on a job if its status is one of `expect`; None if it was not."""
        new = self._update(job_key(job_id), **_job_change(job_id, expect, values),
                           returns="ALL_NEW")
        return Job.model_validate(new) if new else None

    def job_change(
        self, job_id: str, *, expect: Iterable[JobStatus] | None = None, **values: Any
    ) -> dict[str, Any]:
        """`update_job` as an item of a transaction (another store writes it with its own).

        The item's condition is the job's status being one of `expect`; a transaction
        cancelled on it changed nothing.
        """
        request = _update_request(job_key(job_id), **_job_change(job_id, expect, values))
        return {"Update": {"TableName": self.table, **request}}

    def bind_cutout(self, job_id: str, prediction_id: str) -> bool:
        """Record the job's cutout prediction, unless another one was recorded first."""
        return self._update(
            job_key(job_id),
            set_values={"cutout_prediction_id": prediction_id, "updated_at": iso(utcnow())},
            condition="attribute_not_exists(cutout_prediction_id) OR cutout_prediction_id = :p",
            condition_values={":p": prediction_id},
        ) is not None

    def bind_tool_prediction(
        self, job_id: str, prediction_id: str, *, replaces: str | None = None
    ) -> bool:
        """Record the prediction a tool job waits for: its first (`replaces` None), or
        the one after `replaces` (a fit's upscale). A retry binding the same one wins;
        a job no longer processing binds nothing."""
        expected = ("attribute_not_exists(tool_prediction_id)" if replaces is None
                    else "tool_prediction_id = :was")
        values: dict[str, Any] = {":p": prediction_id, "#status": "status",
                                  ":processing": str(JobStatus.PROCESSING)}
        if replaces is not None:
            values[":was"] = replaces
        return self._update(
            job_key(job_id),
            set_values={"tool_prediction_id": prediction_id, "updated_at": iso(utcnow())},
            condition=f"#status = :processing AND ({expected} OR tool_prediction_id = :p)",
            condition_values=values,
        ) is not None

    def settle_tool_output(self, job_id: str, *, delivered: bool, **values: Any) -> Job | None:
        """Count a tool job's one output off (made or not) with what goes with it (the
        output, or the reason), once: None when it was settled already, either way."""
        new = self._update(
            job_key(job_id),
            add_sets={"delivered" if delivered else "rejected": {TOOL_OUTPUT_ID}},
            set_values={**{k: _plain(v) for k, v in values.items()},
                        "updated_at": iso(utcnow())},
            condition="attribute_exists(pk) AND NOT contains(delivered, :out) "
                      "AND NOT contains(rejected, :out)",
            condition_values={":out": TOOL_OUTPUT_ID},
            returns="ALL_NEW",
        )
        return Job.model_validate(new) if new else None

    def count_off_shot(self, job_id: str, shot_id: str, *, delivered: bool) -> Job:
        """Add a settled shot to the job's delivered or rejected set.

        Adding to a set is idempotent, so a retried step cannot count a shot twice; the
        returned job tells the caller whether every shot is now settled.
        """
        new = self._update(
            job_key(job_id),
            add_sets={"delivered" if delivered else "rejected": {shot_id}},
            set_values={"updated_at": iso(utcnow())},
            condition="attribute_exists(pk)",
            returns="ALL_NEW",
        )
        if new is None:
            raise LookupError(f"job {job_id} does not exist")
        return Job.model_validate(new)

    def claim_finish(self, job_id: str, finisher: str) -> Job | None:
        """Let exactly one caller (and its own retries) finish a job."""
        new = self._update(
            job_key(job_id),
            set_values={"finisher": finisher},
            condition="attribute_not_exists(finisher) OR finisher = :me",
            condition_values={":me": finisher},
            returns="ALL_NEW",
        )
        return Job.model_validate(new) if new else None

    # --- shots ------------------------------------------------------------------------

    def put_shots(self, shots: list[Shot]) -> None:
        """Write a job's planned shots (idempotent: the same plan gives the same items)."""
        requests = [
            {"PutRequest": {"Item": serialize({**s.model_dump(mode="json"),
                                               **shot_key(s.job_id, s.shot_id)})}}
            for s in shots
        ]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            for _ in range(8):
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise TransientError("DynamoDB did not take every shot; try again.")

    def get_shots(self, job_id: str) -> list[Shot]:
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :shot)",
            ExpressionAttributeValues=serialize({":pk": f"JOB#{job_id}", ":shot": "SHOT#"}),
            ConsistentRead=True,
        )
        return [to_model(i, Shot) for i in items]

    def get_shot(self, job_id: str, shot_id: str) -> Shot | None:
        item = self._get(shot_key(job_id, shot_id))
        return to_model(item, Shot) if item else None

    def update_shot(
        self,
        job_id: str,
        shot_id: str,
        *,
        condition: str = "attribute_exists(pk)",
        condition_values: dict[str, Any] | None = None,
        append_check: ShotCheckRecord | None = None,
        **values: Any,
    ) -> Shot | None:
        values["updated_at"] = iso(utcnow())
        set_values = {k: _plain(v) for k, v in values.items()}
        new = self._update_with_append(
            shot_key(job_id, shot_id), set_values, condition, condition_values, append_check
        )
        return Shot.model_validate(new) if new else None

    def _update_with_append(
        self,
        key: dict[str, str],
        set_values: dict[str, Any],
        condition: str,
        condition_values: dict[str, Any] | None,
        append_check: ShotCheckRecord | None,
    ) -> dict[str, Any] | None:
        if append_check is None:
            return self._update(
                key,
                set_values=set_values,
                condition=condition,
                condition_values=condition_values,
                returns="ALL_NEW",
            )
        # list_append needs its own clause; keep it out of the generic helper.
        names = {f"#s{i}": k for i, k in enumerate(set_values)}
        values: dict[str, Any] = {f":s{i}": v for i, v in enumerate(set_values.values())}
        values[":check"] = [append_check.model_dump(mode="json")]
        values[":empty"] = []
        sets = [f"#s{i} = :s{i}" for i in range(len(set_values))]
        sets.append("checks = list_append(if_not_exists(checks, :empty), :check)")
        for placeholder, value in (condition_values or {}).items():
            (names if placeholder.startswith("#") else values)[placeholder] = value
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=serialize(key),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise translate_fault(error) from error
        return deserialize(response.get("Attributes", {}))

    # --- predictions --------------------------------------------------------------------

    def put_prediction(self, prediction: Prediction) -> bool:
        item = prediction.model_dump(mode="json")
        item.update(prediction_key(prediction.prediction_id))
        if prediction.state == "pending":
            item["gsi2pk"] = due_shard(prediction.prediction_id)
            item["gsi2sk"] = f"{iso(prediction.deadline)}#PRED#{prediction.prediction_id}"
        return self._put_new(item)

    def get_prediction(self, prediction_id: str) -> Prediction | None:
        item = self._get(prediction_key(prediction_id))
        return to_model(item, Prediction) if item else None

    def record_outcome(
        self, prediction_id: str, outcome: PredictionOutcome
    ) -> tuple[Prediction | None, bool]:
        """Store a prediction's result once.

        Returns (prediction, newly_recorded). The prediction is None when Lightbox never
        made it (or has not recorded it yet); newly_recorded is False for a duplicate.
        A webhook can race the record of its own prediction (a model that fails at
        once): when the record appears between the write and the read, write again.
        """
        current: Prediction | None = None
        for _ in range(2):
            new = self._update(
                prediction_key(prediction_id),
                set_values={
                    "state": "completed",
                    "outcome": outcome.model_dump(mode="json"),
                    "completed_at": iso(utcnow()),
                },
                remove=["gsi2pk", "gsi2sk"],
                condition="attribute_exists(pk) AND #state = :pending",
                condition_values={"#state": "state", ":pending": "pending"},
                returns="ALL_NEW",
            )
            if new:
                return Prediction.model_validate(new), True
            current = self.get_prediction(prediction_id)
            if current is None or current.state != "pending":
                return current, False
        return current, False

    def mark_asked(self, prediction_id: str, new_deadline: datetime) -> bool:
        """The sweeper asks about a prediction once; this records that it did."""
        return (
            self._update(
                prediction_key(prediction_id),
                set_values={
                    "asked": True,
                    "deadline": iso(new_deadline),
                    "gsi2sk": f"{iso(new_deadline)}#PRED#{prediction_id}",
                },
                condition="#state = :pending AND (attribute_not_exists(asked) OR asked = :no)",
                condition_values={"#state": "state", ":pending": "pending", ":no": False},
            )
            is not None
        )

    # --- the sweeper's view -------------------------------------------------------------

    def overdue(self, now: datetime, *, limit: int = 200) -> Iterator[tuple[str, str]]:
        """(kind, id) of every unfinished job or prediction whose deadline has passed."""
        for shard in range(DUE_SHARDS):
            items = self._query(
                IndexName="gsi2",
                KeyConditionExpression="gsi2pk = :shard AND gsi2sk < :now",
                ExpressionAttributeValues=serialize(
                    {":shard": f"DUE#{shard}", ":now": iso(now)}
                ),
                ProjectionExpression="gsi2sk",
                Limit=limit,
            )
            for item in items:
                _, kind, item_id = deserialize(item)["gsi2sk"].split("#", 2)
                yield kind, item_id


_TERMINAL_JOB = {s for s in JobStatus if s.terminal}


def _job_change(
    job_id: str, expect: Iterable[JobStatus] | None, values: dict[str, Any]
) -> dict[str, Any]:
    """The update of a job's fields: timestamps, its place on the sweeper's index, status."""
    values = {**values, "updated_at": iso(utcnow())}
    if isinstance(values.get("status"), JobStatus) and values["status"].terminal:
        values["finished_at"] = values.get("finished_at") or iso(utcnow())
    remove = ["gsi2pk", "gsi2sk"] if values.get("status") in _TERMINAL_JOB else []
    if "deadline" in values and not remove:
        values["gsi2sk"] = f"{iso(values['deadline'])}#JOB#{job_id}"
    condition, condition_values = _status_condition(expect)
    return {
        "set_values": {k: _plain(v) for k, v in values.items()},
        "remove": remove,
        "condition": condition or "attribute_exists(pk)",
        "condition_values": condition_values,
    }


def _status_condition(
    expect: Iterable[JobStatus] | None,
) -> tuple[str | None, dict[str, Any]]:
    if expect is None:
        return None, {}
    statuses = list(expect)
    placeholders = {f":st{i}": str(s) for i, s in enumerate(statuses)}
    condition = f"#status IN ({', '.join(placeholders)})"
    return condition, {"#status": "status", **placeholders}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (JobStatus, ShotStatus)):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_JOB_PAGE_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk"}


def _job_page_start(cursor: str, user_id: str) -> dict[str, Any]:
    """The next page's start key from a jobs cursor; a cursor that is not one this user
    was given (garbage, or another user's) is refused, never passed to DynamoDB."""
    try:
        key = json.loads(cursor)
    except ValueError as error:
        raise InvalidInput("That page cursor is not valid.") from error
    valid = (
        isinstance(key, dict) and set(key) == _JOB_PAGE_KEYS
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str)
                for v in key.values())
        and key["gsi1pk"]["S"] == f"USER#{user_id}"
    )
    if not valid:
        raise InvalidInput("That page cursor is not valid.")
    return key


def _update_request(
    key: dict[str, str],
    *,
    set_values: dict[str, Any] | None = None,
    remove: Iterable[str] = (),
    add_sets: dict[str, set[str]] | None = None,
    condition: str | None = None,
    condition_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of one update (Key, expressions), for UpdateItem or a transaction."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses: list[str] = []
    sets = []
    for i, (name, value) in enumerate((set_values or {}).items()):
        if value is None:
            remove = [*remove, name]
            continue
        names[f"#s{i}"] = name
        values[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    if sets:
        clauses.append("SET " + ", ".join(sets))
    adds = []
    for i, (name, members) in enumerate((add_sets or {}).items()):
        names[f"#a{i}"] = name
        values[f":a{i}"] = set(members)
        adds.append(f"#a{i} :a{i}")
    if adds:
        clauses.append("ADD " + ", ".join(adds))
    removes = []
    for i, name in enumerate(remove):
        names[f"#r{i}"] = name
        removes.append(f"#r{i}")
    if removes:
        clauses.append("REMOVE " + ", ".join(removes))
    kwargs: dict[str, Any] = {
        "Key": serialize(key),
        "UpdateExpression": " ".join(clauses),
    }
    if condition:
        kwargs["ConditionExpression"] = condition
        for placeholder, value in (condition_values or {}).items():
            if placeholder.startswith("#"):
                names[placeholder] = value
            else:
                values[placeholder] = value
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = serialize(values)
    return kwargs
