"""Schemathesis drives every operation of the emulator's OpenAPI document: no 5xx, ever."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.fixtures_emulator import Emulator

EXAMPLES_PER_OPERATION = 8


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_with_a_server_error(emulator: Emulator, mode: GenerationMode) -> None:
    # schemathesis' own pytest plugin (`from_fixture`) does not run on pytest 9: drive hypothesis.
    schema = schemathesis.openapi.from_url(f"{emulator.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35

    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=emulator.headers, checks=[not_a_server_error])

        no_server_error()
