"""Secrets: a value given in the environment (local) or an SSM parameter (AWS), cached.

Only parameter names travel in the Lambda environment. Values are fetched with
Powertools' parameters utility, which caches them for `max_age` seconds so a warm
function does not call SSM per request, and picks up a rotated value soon after.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

CACHE_SECONDS = 300


def resolve_secret(value: str, parameter_name: str) -> str:
    if value:
        return value
    if not parameter_name:
        return ""
    secret = parameters.get_parameter(parameter_name, decrypt=True, max_age=CACHE_SECONDS)
    return str(secret)
