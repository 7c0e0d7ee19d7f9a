"""Starting the "finish image" state machine, once per finished prediction."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lightbox.errors import TransientError


class ImageWorkflow:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.arn = state_machine_arn

    def start(self, prediction_id: str) -> bool:
        """Start the execution named after the prediction; False if it already exists.

        The input is built from the id alone, so every start for the same prediction
        is identical: a running duplicate is returned as is, and a finished one is
        refused with ExecutionAlreadyExists. Either way nothing runs twice.
        """
        try:
            self.client.start_execution(
                stateMachineArn=self.arn,
                name=execution_name(prediction_id),
                input=json.dumps({"prediction_id": prediction_id}),
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                return False
            if code in ("ThrottlingException", "ServiceUnavailable", "InternalFailure"):
                raise TransientError(f"Step Functions is busy ({code}).") from error
            raise
        return True


def execution_name(prediction_id: str) -> str:
    """Execution names allow 80 characters of [A-Za-z0-9-_]."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in prediction_id)
    return safe[:80]
