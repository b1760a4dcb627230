"""schemathesis against docs/openapi.json (issue 7, "Bad input"): every documented
operation of a node (wired as node.app wires it, over a real LevelDB store), with
requests generated from the document, valid and invalid ones, in process: the node
serves on a loopback port from an event loop of its own thread, schemathesis sends with
``requests`` from the test's thread.

Checks on every reply: no 5xx; the status is one the document lists for the operation;
the content type and the body are what the document says for that status; a request the
document's schemas refuse gets a 4xx. And a refusal changes nothing in the store.

Not checked: ``positive_data_acceptance`` (a request the schemas admit may still be
refused, on purpose: a forged signature, an unknown token, a stale fetch are valid JSON),
and the WebSocket stream (documented as a GET whose 101 reply schemathesis cannot open:
tests/node/test_api_fuzz.py fuzzes it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from node.stream import STREAM_PATH
from tests.support.fuzzing import CASES, FuzzNode, examples, node_in_thread
from tests.support.long_runs import LONG

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"

#: The phases: the document's examples, then random requests (hypothesis); under
#: FARTHING_LONG also the coverage phase (boundary and invalid values of every field,
#: about 1,300 more requests, 40 s here).
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": LONG}, "stateful": {"enabled": False}}}
)
SCHEMA = schemathesis.openapi.from_path(DOCUMENT, config=CONFIG).exclude(path=STREAM_PATH)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

#: A malformed item of a batch fails alone (its result is a ``bad_request`` error, the
#: request is 200), as the document says: the request-level negative check does not apply.
BATCHES = {"/v1/orders/batch", "/v1/certificates/batch"}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzNode]:
    with node_in_thread(tmp_path_factory.mktemp("schema-fuzz")) as running:
        yield running


@SCHEMA.parametrize()
@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_node_keeps_its_documented_promises(case: Any, node: FuzzNode) -> None:
    CASES.add("schema: " + case.operation.label)
    before = node.digest()
    response = case.call(base_url=node.url, timeout=30)
    batch = case.operation.path in BATCHES
    case.validate_response(response, checks=CHECKS[:-1] if batch else CHECKS)
    if response.status_code >= 400:
        assert node.digest() == before, (case.operation.label, response.status_code)


def test_the_schema_fuzzer_ran_enough_cases() -> None:
    """Runs last in this module: every operation had its cases."""
    ran = {k: v for k, v in CASES.by_test.items() if k.startswith("schema: ")}
    print(f"schemathesis cases: {sum(ran.values())} over {len(ran)} operations")
    if len(ran) == len(list(SCHEMA.get_all_operations())):
        assert sum(ran.values()) >= examples(300)
