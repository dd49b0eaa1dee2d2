"""Fault sequences every ESP connector survives without a duplicate (connectors/base.py).

A vendor's test module subclasses `FaultSequences` with the same two fixtures as the contract
(`fake`, `make_connector(sleep=...)`); its fake also names `lookup_route` (where the connector
looks for a lost create) and supports `list_late` / `inject(after_handling=True)`
(tests/connectors/fakes/base.py). Every test name says "lost" or "collision", so
`-k "<vendor> and (lost or collision)"` selects a vendor's suite.

After each sequence exactly one resource carries the item's marker, and the result (what the
record stores) names it; `spec_problems` stays empty (the fakes stay strict).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from connectors.base import PushItem, marked_name
from connectors.errors import AmbiguousCreateError
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM
from tests.connectors.fakes.base import Reply

MARKER = "ee-test0series1"
OURS = replace(ITEM, marker=MARKER)
LOST_AFTER_MAKING = {"delay": CLIENT_TIMEOUT + 0.5, "delay_after_handling": True}


class FaultSequences:
    @pytest.fixture(autouse=True)
    def _fakes_stay_strict(self, fake: Any) -> Any:
        yield
        assert fake.spec_problems == [], "requests the vendor's spec rejects:\n" + "\n".join(fake.spec_problems)

    @pytest.fixture
    def waits(self) -> list[float]:
        return []

    @pytest.fixture
    def connector(self, make_connector: Any, waits: list[float]) -> Any:
        return make_connector(sleep=waits.append)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def ours(fake: Any, item: PushItem = OURS) -> list[str]:
        name = marked_name(item.name, item.marker)
        return [rid for rid, r in fake.resources.items() if r.get("name") == name]

    def assert_exactly_one(self, fake: Any, result: Any, *, adopted: bool) -> None:
        assert self.ours(fake) == [result.resource_id]
        assert result.resource_url and result.resource_id in result.resource_url
        if adopted:  # the record's warnings say which resource was found, by its marker
            assert any(result.resource_id in w and MARKER in w for w in result.warnings), result.warnings

    @staticmethod
    def lose_creates(fake: Any, *faults: str) -> None:
        """Queue create faults in order: "nothing" = a 5xx with nothing made; "made" = made, answer lost."""
        method, path = fake.create_route
        for fault in faults:
            if fault == "nothing":
                fake.inject(method=method, path=path, reply=fake.server_error())
            else:
                fake.inject(method=method, path=path, **LOST_AFTER_MAKING)

    # -- sequences -------------------------------------------------------------------------

    def test_two_lost_creates_in_a_row_make_one_resource(self, fake: Any, connector: Any):
        self.lose_creates(fake, "nothing", "made")
        result = connector.push(OURS)
        self.assert_exactly_one(fake, result, adopted=True)
        assert fake.count(*fake.create_route) == 2

    def test_three_lost_creates_in_a_row_make_one_resource(self, fake: Any, connector: Any):
        self.lose_creates(fake, "nothing", "nothing", "made")
        result = connector.push(OURS)
        self.assert_exactly_one(fake, result, adopted=True)
        assert fake.count(*fake.create_route) == 3

    def test_lost_creates_beyond_the_limit_fail_with_may_exist_then_a_task_retry_finds_it(
            self, fake: Any, connector: Any, make_connector: Any, waits: list[float]):
        # Three creates, none answered; the third was made but is listed only after the bound.
        self.lose_creates(fake, "nothing", "nothing")
        fake.inject(method=fake.create_route[0], path=fake.create_route[1], **LOST_AFTER_MAKING)
        fake.list_late(10_000)
        with pytest.raises(AmbiguousCreateError, match=f"may exist: {MARKER}"):
            connector.push(OURS)
        assert fake.count(*fake.create_route) == 3  # never more than max_creates
        fake.list_late(0)  # the vendor lists it now
        # The task retry (same connector instance, as Prefect retries the task in its session):
        result = connector.push(OURS, retrying=True)
        self.assert_exactly_one(fake, result, adopted=True)
        assert fake.count(*fake.create_route) == 3

    def test_lost_create_then_a_flow_retry_in_a_new_process_finds_it(self, fake: Any, make_connector: Any,
                                                                    waits: list[float]):
        method, path = fake.lookup_route
        self.lose_creates(fake, "made")
        fake.inject(method=method, path=path, reply=fake.server_error(), times=50)  # the lookups fail too
        with pytest.raises(AmbiguousCreateError, match=f"may exist: {MARKER}"):
            make_connector(sleep=waits.append).push(OURS)
        fake.clear_faults()
        retried = make_connector(sleep=waits.append)  # nothing remembered: only the marker
        result = retried.push(OURS, retrying=True)
        self.assert_exactly_one(fake, result, adopted=True)
        assert fake.count(*fake.create_route) == 1

    def test_lost_create_committed_late_is_found_within_the_bound(self, fake: Any, connector: Any,
                                                                 waits: list[float]):
        looks = len(connector.lookup_waits) - 1  # listed at the last look
        fake.list_late(looks)
        self.lose_creates(fake, "made")
        result = connector.push(OURS)
        self.assert_exactly_one(fake, result, adopted=True)
        assert fake.count(*fake.create_route) == 1
        assert sum(waits) <= sum(connector.lookup_waits)  # the documented bound, not more

    def test_lost_create_next_to_a_same_name_resource_of_an_older_export_is_no_collision(
            self, fake: Any, make_connector: Any, connector: Any):
        older_export = replace(ITEM, marker="ee-olderexport0")
        older = make_connector(sleep=lambda s: None).push(older_export).resource_id
        legacy = make_connector(sleep=lambda s: None).create(replace(ITEM, marker="legacy-no-marker")).resource_id
        before = {rid: dict(fake.resources[rid]) for rid in (older, legacy)}
        self.lose_creates(fake, "nothing")
        result = connector.push(OURS)
        assert result.resource_id not in (older, legacy)
        assert not any("found" in w for w in result.warnings)  # a new create, nothing "found"
        self.assert_exactly_one(fake, result, adopted=False)
        for rid, stored in before.items():  # the other exports' resources are untouched
            assert {k: v for k, v in fake.resources[rid].items() if k not in ("updated", "updated_at")} == \
                {k: v for k, v in stored.items() if k not in ("updated", "updated_at")}

    def test_lost_id_in_an_unexpected_2xx_body_is_recovered_by_lookup(self, fake: Any, connector: Any):
        method, path = fake.create_route
        fake.inject(method=method, path=path, reply=Reply(200, "<html><body>Welcome</body></html>",
                                                          {"Content-Type": "text/html"}), after_handling=True)
        result = connector.push(OURS)
        self.assert_exactly_one(fake, result, adopted=True)
        assert fake.count(method, path) == 1

    def test_lost_id_in_a_2xx_json_body_of_another_shape_is_recovered_by_lookup(self, fake: Any, connector: Any):
        method, path = fake.create_route
        fake.inject(method=method, path=path, reply=Reply(200, {"data": None, "result": []}), after_handling=True)
        result = connector.push(OURS)
        self.assert_exactly_one(fake, result, adopted=True)

    def test_lost_step_after_a_create_is_finished_by_the_task_retry_without_a_second_create(
            self, fake: Any, connector: Any):
        # The create answered; then the push failed (here: the previous answer handled, a later
        # request of the same push lost). The retry must update what it made, not create again.
        first = connector.push(OURS)
        again = connector.push(OURS, retrying=True)
        assert again.resource_id == first.resource_id
        assert self.ours(fake) == [first.resource_id]
        assert fake.count(*fake.create_route) == 1
