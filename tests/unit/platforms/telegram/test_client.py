"""Bot API addressing shared by the notifier and the command bot (pure)."""

from __future__ import annotations

from alertbot.platforms.telegram.client import api_base_url, api_file_url, chat_ref


def test_chat_ref_numeric_ids_become_int_usernames_stay() -> None:
    assert chat_ref("-100123") == -100123
    assert chat_ref("@alerts") == "@alerts"


def test_api_urls_append_bot_paths_to_the_server_root() -> None:
    assert api_base_url("http://127.0.0.1:8081/") == "http://127.0.0.1:8081/bot"
    assert api_file_url("http://127.0.0.1:8081") == "http://127.0.0.1:8081/file/bot"
