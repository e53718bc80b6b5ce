"""The Telegram webhook body decoder: only a JSON object with a non-negative integer update_id."""

from __future__ import annotations

import pytest

from alertbot.http.ingest import IngestError
from alertbot.http.telegram_hook import MAX_UPDATE_ID, decode_update


@pytest.mark.parametrize(("body", "message"), [
    (b"", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"null", "not a JSON object"),
    (b'"update_id"', "not a JSON object"),
    (b"{}", "no update_id"),
    (b'{"update_id": true}', "no update_id"),
    (b'{"update_id": 1.0}', "no update_id"),
    (b'{"update_id": null}', "no update_id"),
    (b'{"update_id": -5}', "no update_id"),
    (f'{{"update_id": {MAX_UPDATE_ID + 1}}}'.encode(), "no update_id"),
])
def test_decode_bad_body_is_400_naming_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(IngestError) as caught:
        decode_update(body)
    assert (caught.value.status, caught.value.result) == (400, "malformed")
    assert message in caught.value.message


def test_decode_update_gives_id_and_object() -> None:
    update_id, data = decode_update(b'{"update_id": 0, "message": {"text": "/id"}}')
    assert update_id == 0 and data["message"] == {"text": "/id"}
    assert decode_update(f'{{"update_id": {MAX_UPDATE_ID}}}'.encode())[0] == MAX_UPDATE_ID
