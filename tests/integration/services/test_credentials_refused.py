"""A platform refusing the bot's token: alerts are retried until it is fixed, never dropped."""

from __future__ import annotations

from telegram.error import InvalidToken

from alertbot.domain.models import Reason
from alertbot.domain.why import explain
from alertbot.platforms.telegram.errors import translate_error
from alertbot.ports.notifier import DeliveryError, Target
from alertbot.store.sqlite import SqliteStore
from tests.integration.services.test_dispatcher import (
    CHAT,
    FAST_RETRY,
    Recorder,
    ScriptedNotifier,
    add_changes,
    make_dispatcher,
)


def token_rejected() -> DeliveryError:
    error = translate_error(InvalidToken("The token `123:ABC` was rejected by the server."))
    error.retry_after = 0.01  # the real wait (a minute) is not what this test is about
    return error


async def test_dispatcher_telegram_invalid_token_is_a_retry_never_dead_lettered(
    store: SqliteStore,
) -> None:
    await add_changes(store, 1)
    refusals = FAST_RETRY.max_attempts + 2
    failures = iter([token_rejected() for _ in range(refusals)])

    def script(target: Target, key: str) -> DeliveryError | None:
        return next(failures, None)

    notifier = ScriptedNotifier(script=script)
    observer = Recorder()
    dispatcher = make_dispatcher(store, notifier, observer)
    await dispatcher.run_until_idle(20)
    # More refusals than retries allowed, yet delivered once the token works again.
    assert len(notifier.sent) == 1 and len(notifier.attempts) == refusals + 1
    assert observer.outcomes == [Reason.RETRY] * refusals
    decisions = await store.recent_decisions(CHAT, 30)
    assert [d.reason for d in decisions] == [Reason.RETRY] * refusals + [Reason.SENT]
    latest = decisions[0]
    line = explain(latest.at, latest.change, latest.reason, latest.detail)
    assert "TELEGRAM_BOT_TOKEN" in line and "slow down" not in line
    assert (await store.outbox_stats()).by_state == {"sent": 1}
