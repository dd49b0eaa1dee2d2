from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from emailexport.locales import LOCALES, direction_of
from emailexport.models import Conditional, EmailDesignSystem, ExportOptions, format_timestamp


def test_the_contract_lists_53_locales_and_only_arabic_and_hebrew_are_rtl():
    # The seed's enum has 53 values (the issue text says 58; the seed is the contract).
    assert len(LOCALES) == 53 == len(set(LOCALES))
    assert [loc for loc in LOCALES if direction_of(loc) == "rtl"] == ["ar-SA", "he-IL"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2023, 8, 23, 10, 30, tzinfo=UTC), "2023-08-23T10:30:00.000Z"),
        (datetime(2023, 8, 23, 10, 30, 0, 123456, tzinfo=UTC), "2023-08-23T10:30:00.123Z"),
        (datetime(2023, 8, 23, 12, 30, tzinfo=timezone(timedelta(hours=2))), "2023-08-23T10:30:00.000Z"),
        (datetime(2023, 8, 23, 10, 30), "2023-08-23T10:30:00.000Z"),
    ],
)
def test_timestamps_are_utc_with_milliseconds_and_z(value, expected):
    assert format_timestamp(value) == expected


def test_options_reject_unknown_locales_and_fields():
    with pytest.raises(ValidationError) as info:
        ExportOptions.model_validate({"locales": ["en-US", "xx-XX"], "surprise": 1})
    locs = {e["loc"] for e in info.value.errors()}
    assert ("locales", 1) in locs and ("surprise",) in locs


def test_a_design_system_needs_exactly_one_container():
    component = {"name": "a", "template": "x"}
    with pytest.raises(ValidationError, match="exactly one container"):
        EmailDesignSystem.model_validate({"id": 1, "name": "d", "components": [component]})


def test_only_the_last_branch_may_have_no_rule():
    with pytest.raises(ValidationError, match="only the last branch"):
        Conditional.model_validate({"id": 1, "branches": [{"key": "a"}, {"key": "b", "rule": {
            "field": "x", "operator": "equals", "value": "1"}}]})
