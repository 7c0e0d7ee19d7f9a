"""Schemathesis: generated requests for every operation in the API's OpenAPI schema,
signed in, never get a 5xx. Bounded, so it runs in every `make test`.

The schema is read from the running stack (GET /openapi.json), so it is the one the
deployed API serves. Schemathesis's pytest fixture loader does not work with pytest 9
(it sets `request.node._nodeid`), so the operations are fuzzed here with Hypothesis
directly, each in both of Schemathesis's generation modes (valid and invalid data).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import Failure, FailureGroup, not_a_server_error

from lightbox_local.stack import LocalStack

pytestmark = [pytest.mark.slow]

#: Examples per operation and mode: enough to reach each operation's error paths,
#: few enough for every `make test`.
EXAMPLES = 25


def test_no_generated_request_gets_a_server_error(stack: LocalStack, token: str) -> None:
    # Given the API's own schema, and a signed-in shop with credits
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"POST /api/uploads", "GET /api/jobs/{job_id}", "POST /api/jobs/{job_id}/zip",
            "POST /api/checkout/local"} <= labels
    # When every operation gets generated requests, valid and invalid
    statuses: dict[str, set[int]] = defaultdict(set)
    failures = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, token, statuses[operation.label])
            except Unsatisfiable:
                if mode == GenerationMode.POSITIVE:
                    raise
                # an operation that takes no input has no invalid requests
            except (FailureGroup, Failure, requests.RequestException) as failure:
                failures[f"{operation.label} ({mode.value})"] = str(failure)[:2000]
    # Then none of them is answered with a 5xx
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    # and the signed-in routes were reached past the authorizer, not only refused
    assert 200 in statuses["GET /api/credits"]
    assert 201 in statuses["POST /api/uploads"]


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, token: str,
          statuses: set[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                          checks=[not_a_server_error], timeout=30)
        statuses.add(response.status_code)

    run()
