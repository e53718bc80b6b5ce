"""`alertbot chart`: a valid PNG from the demo source, one-line errors with exit 2."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.support import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def workspace(cli_workspace: Path) -> Path:
    return cli_workspace


def size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_cli_chart_writes_a_png_and_prints_its_text_alternative(
        capsys: pytest.CaptureFixture[str], workspace: Path) -> None:
    code, out, err = run_cli(capsys, "chart", "BTC", "--days", "90", "--out", "btc.png")

    assert code == 0, err
    data = (workspace / "btc.png").read_bytes()
    assert size(data) == (1000, 560)
    caption, wrote = out.strip().splitlines()
    assert caption.startswith("BTC grade history, ") and "(90 days)" in caption
    assert wrote == f"wrote btc.png ({len(data):,} bytes)"


def test_cli_chart_drivers_writes_the_bar_chart(capsys: pytest.CaptureFixture[str],
                                                workspace: Path) -> None:
    code, out, err = run_cli(capsys, "chart", "ETH", "--drivers", "--out", "eth.png")

    assert code == 0, err
    assert size((workspace / "eth.png").read_bytes()) == (1000, 560)
    assert out.startswith("ETH fundamental-grade components on ")


@pytest.mark.parametrize(("args", "message"), [
    (["chart", "NOPE", "--out", "x.png"], "Unknown symbol NOPE."),
    (["chart", "BTC", "--days", "3", "--out", "x.png"], "--days: 3 days is not a chart range"),
    (["chart", "BTC", "--days", "999", "--out", "x.png"], "use 7 to 365 days"),
    (["chart", "BTC", "--days", "many", "--out", "x.png"], "invalid int value: 'many'"),
    (["chart", "BTC", "--out", "x.jpg"], "--out x.jpg: the file name must end in .png"),
    (["chart", "BTC", "--out", "nowhere/x.png"], "directory nowhere does not exist"),
    (["chart", "BTC"], "the following arguments are required: --out"),
])
def test_cli_chart_bad_input_one_line_exit_2_writes_nothing(
        capsys: pytest.CaptureFixture[str], workspace: Path, args: list[str],
        message: str) -> None:
    try:
        code, out, err = run_cli(capsys, *args)
    except SystemExit as exit_:  # argparse's own errors end the process, as on a shell
        code, (out, err) = int(str(exit_.code)), capsys.readouterr()

    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert list(workspace.glob("*.png")) == []
