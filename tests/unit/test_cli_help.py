"""Every command's --help describes it and shows examples, and exits 0."""

from __future__ import annotations

import argparse

import pytest

from alertbot.cli import _parser, main


def _commands(parser: argparse.ArgumentParser,
              prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*prefix, name))
    return found


COMMANDS = _commands(_parser())


def test_cli_help_commands_found_include_every_documented_command() -> None:
    names = {" ".join(command) for command in COMMANDS}
    assert {"", "run", "check", "lookup", "subscribe", "unsubscribe", "subscriptions",
            "throttle", "test", "why", "db", "db backup", "db stats"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "alertbot")
def test_cli_help_any_command_has_description_and_examples_and_exits_0(
        command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    usage, _, rest = out.partition("\n\n")
    assert usage.startswith("usage: alertbot")
    description = rest.split("\n\n")[0]
    assert len(description.split()) >= 8, f"no description: {out}"
    _, found, examples = out.partition("\nexamples:\n")
    assert found, f"no examples block: {out}"
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert lines and all(line.startswith("alertbot ") and " ".join(command) in line
                         for line in lines), lines
