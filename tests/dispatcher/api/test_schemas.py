"""The shared wire helpers the resource routers build on: camelCase models, the envelope, and
cursor pages read forwards and backwards."""

from __future__ import annotations

import pytest
from pydantic import Field

from dispatcher.api.errors import UnprocessableError
from dispatcher.api.schemas import (
    TOTAL_COUNT_CAP,
    WireModel,
    cursor_page,
    decode_cursor,
    encode_cursor,
    envelope,
)


class Thing(WireModel):
    id: str = Field(alias="_id")
    subscriber_id: str
    first_name: str | None = None


def test_wire_models_speak_camel_case_and_ignore_unknown_fields() -> None:
    thing = Thing.model_validate({"_id": "1", "subscriberId": "ada", "newField": 1})
    assert (thing.id, thing.subscriber_id) == ("1", "ada")
    assert Thing(_id="2", subscriber_id="bo").subscriber_id == "bo"
    assert envelope(thing) == {"data": {"_id": "1", "subscriberId": "ada", "firstName": None}}
    assert envelope([thing]) == {"data": [envelope(thing)["data"]]}
    assert envelope(True) == {"data": True}


@pytest.mark.parametrize("position", [[1], ["2026-01-01T00:00:00Z", "ada"], [None, 3.5]])
def test_cursors_round_trip(position: list[object]) -> None:
    assert decode_cursor(encode_cursor(position)) == position


@pytest.mark.parametrize(
    "cursor", ["", "not base64!", encode_cursor([1])[:-2] + "@@", "eyJhIjoxfQ"]
)
def test_a_foreign_cursor_is_422_naming_the_parameter(cursor: str) -> None:
    with pytest.raises(UnprocessableError) as refused:
        decode_cursor(cursor, "before")
    assert set(refused.value.errors) == {"before"}


ROWS = [{"n": n} for n in range(1, 8)]


def page(rows: list[dict[str, int]], **options: object) -> dict[str, object]:
    return cursor_page(
        rows, limit=3, position=lambda row: [row["n"]], render=lambda row: row["n"],
        total_count=len(ROWS), **options,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "options", "data", "has_next", "has_previous"),
    [
        (ROWS[:4], {}, [1, 2, 3], True, False),  # first page
        (ROWS[3:7], {"had_cursor": True}, [4, 5, 6], True, True),  # a middle page
        (ROWS[6:], {"had_cursor": True}, [7], False, True),  # the last page
        # Read backwards from before 7: nearest first, one more than the limit.
        (ROWS[2:6][::-1], {"backwards": True, "had_cursor": True}, [4, 5, 6], True, True),
        (ROWS[:3][::-1], {"backwards": True, "had_cursor": True}, [1, 2, 3], True, False),
        ([], {}, [], False, False),
    ],
)
def test_cursor_pages(
    rows: list[dict[str, int]],
    options: dict[str, object],
    data: list[int],
    has_next: bool,
    has_previous: bool,
) -> None:
    answer = page(rows, **options)
    assert answer["data"] == data
    assert (answer["next"] is not None, answer["previous"] is not None) == (has_next, has_previous)
    if has_next:
        assert decode_cursor(str(answer["next"])) == [data[-1]]
    if has_previous:
        assert decode_cursor(str(answer["previous"])) == [data[0]]
    assert (answer["totalCount"], answer["totalCountCapped"]) == (7, False)


def test_the_total_count_is_capped() -> None:
    answer = cursor_page([], limit=1, position=list, render=str, total_count=TOTAL_COUNT_CAP + 1)
    assert (answer["totalCount"], answer["totalCountCapped"]) == (TOTAL_COUNT_CAP, True)
