"""Properties: any CLI option values are accepted, or refused with one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import io
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from alertbot.cli import PLATFORMS, UsageError, _destination, _parser
from alertbot.domain.models import Policy
from alertbot.domain.policy import update_policy

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
            min_size=1, max_size=30).filter(lambda v: not v.startswith("-")),
    st.sampled_from(["inf", "1e20", "1e400", "nan", "²", "99999999999999999999", "5", "1h",
                     "22:00-07:00", "Europe/Berlin", "hourly=silent", "-100123", "0"]),
)
OPTIONS = ["--max", "--window", "--quiet", "--tz", "--mute", "--settle", "--mode", "--chat",
           "--thread"]


def parse(argv: list[str]) -> argparse.Namespace | None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return _parser().parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 2
        assert len(err.getvalue().strip().splitlines()) == 1
        return None


@given(platform=st.sampled_from(PLATFORMS),
       options=st.dictionaries(st.sampled_from(OPTIONS), values, max_size=5))
def test_cli_throttle_any_options_policy_or_one_line_refusal(
        platform: str, options: dict[str, str]) -> None:
    options.setdefault("--chat", "-100123")
    argv = ["throttle", "--platform", platform]
    for name, value in options.items():
        argv += [name, value]
    args = parse(argv)
    if args is None:
        return
    try:
        _destination(args)
        update_policy(Policy(), NOW, max_alerts=args.max_alerts, window=args.window,
                      quiet=args.quiet, mute=args.mute, unmute=args.unmute,
                      settle=args.settle, modes=args.mode)
    except (UsageError, ValueError) as exc:
        assert str(exc) and "\n" not in str(exc)
