"""Generate the bundled demo data set (deterministic: same seed, same bytes).

Rows use the real Token Metrics field names and encodings: `TOKEN_TREND` / `TRADING_SIGNAL`
as 1/-1/0, hourly `SIGNAL` as a string, grades 0-100 (some served as strings), ISO
timestamps with `Z`. Prices follow a seeded random walk; signals come from moving-average
crossovers, so flips, grade moves and class changes arrive the way real ones do.

    python scripts/make_demo_data.py            # writes alertbot/sources/demo/demo.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20261128
START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 42
OUT = Path(__file__).resolve().parent.parent / "alertbot" / "sources" / "demo" / "demo.json.gz"

# (token_id, symbol, name, slug, start price, hourly volatility, fundamental base, class)
TOKENS = [
    (3375, "BTC", "Bitcoin", "bitcoin", 64000.0, 0.006, 92.0, "storeOfValue"),
    (3306, "ETH", "Ethereum", "ethereum", 2600.0, 0.008, 88.0, "blueChip"),
    (3988, "SOL", "Solana", "solana", 150.0, 0.011, 79.0, "blueChip"),
    (3315, "BNB", "BNB", "binancecoin", 560.0, 0.007, 76.0, "blueChip"),
    (3311, "XRP", "XRP", "ripple", 0.58, 0.010, 64.0, "emerging"),
    (3309, "ADA", "Cardano", "cardano", 0.35, 0.010, 61.0, "emerging"),
    (3313, "DOGE", "Dogecoin", "dogecoin", 0.11, 0.013, 42.0, "speculative"),
    (4062, "AVAX", "Avalanche", "avalanche-2", 26.0, 0.012, 66.0, "emerging"),
    (3373, "DOT", "Polkadot", "polkadot", 4.5, 0.011, 63.0, "emerging"),
    (3387, "LINK", "Chainlink", "chainlink", 11.0, 0.011, 71.0, "blueChip"),
    (3393, "LTC", "Litecoin", "litecoin", 64.0, 0.009, 58.0, "emerging"),
    (3320, "TRX", "TRON", "tron", 0.15, 0.007, 55.0, "emerging"),
    (3335, "ATOM", "Cosmos Hub", "cosmos", 4.6, 0.011, 57.0, "emerging"),
    (4159, "NEAR", "NEAR Protocol", "near", 4.1, 0.013, 60.0, "emerging"),
    (3390, "UNI", "Uniswap", "uniswap", 7.2, 0.012, 62.0, "emerging"),
    (20863, "ARB", "Arbitrum", "arbitrum", 0.55, 0.014, 52.0, "speculative"),
    (16637, "OP", "Optimism", "optimism", 1.5, 0.014, 50.0, "speculative"),
    (19434, "APT", "Aptos", "aptos", 6.5, 0.014, 54.0, "speculative"),
    (21536, "SUI", "Sui", "sui", 1.0, 0.016, 56.0, "speculative"),
    (3312, "PEPE", "Pepe", "pepe", 0.0000085, 0.020, 31.0, "highRisk"),
]

TM_BANDS = ((80, "Strong Buy"), (60, "Buy"), (40, "Neutral"), (20, "Sell"), (0, "Strong Sell"))
CLASSES = ("highRisk", "speculative", "emerging", "blueChip", "storeOfValue")


def iso(ts: datetime) -> str:
    """Timestamp the way the API writes it."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def band_label(grade: float) -> str:
    """TM_GRADE_SIGNAL vocabulary for a grade."""
    return next(name for floor, name in TM_BANDS if grade >= floor)


def ema(values: list[float], span: int) -> list[float]:
    """Exponential moving average."""
    alpha = 2.0 / (span + 1)
    out, acc = [], values[0]
    for v in values:
        acc = alpha * v + (1 - alpha) * acc
        out.append(acc)
    return out


def crossings(fast: list[float], slow: list[float]) -> tuple[list[int], list[int]]:
    """Per step: the trend (1/-1) and the signal (non-zero on the step the trend flips)."""
    trend, signal = [], []
    current = 1 if fast[0] >= slow[0] else -1
    for f, s in zip(fast, slow, strict=True):
        new = 1 if f >= s else -1
        signal.append(new if new != current else 0)
        current = new
        trend.append(current)
    return trend, signal


def token_rows(rng: random.Random, token: tuple, index: int) -> dict[str, list[dict]]:
    """All rows of one token."""
    token_id, symbol, name, slug, price, vol, fund_base, klass = token
    ident = {"TOKEN_ID": token_id, "TOKEN_NAME": name, "TOKEN_SYMBOL": symbol}
    hours = DAYS * 24
    drift = rng.uniform(-0.0002, 0.0002)
    closes, p = [], price
    for h in range(hours):
        regime = math.sin(h / rng.uniform(90, 160) + index) * 0.0008
        p *= math.exp(drift + regime + rng.gauss(0, vol))
        closes.append(p)
    hourly_trend, hourly_signal = crossings(ema(closes, 6), ema(closes, 30))
    hourly = [
        {**ident, "TIMESTAMP": iso(START + timedelta(hours=h)), "CLOSE": round(closes[h], 8),
         "SIGNAL": str(hourly_signal[h]),
         "POSITION": "LONG" if hourly_trend[h] > 0 else "SHORT"}
        for h in range(hours)
    ]
    daily_close = [closes[d * 24 + 23] for d in range(DAYS)]
    daily_trend, daily_signal = crossings(ema(daily_close, 3), ema(daily_close, 9))
    strategy, holding = 0.0, 0.0
    signals, grades, fundamentals = [], [], []
    fund = fund_base
    for d in range(DAYS):
        day = START + timedelta(days=d)
        change = daily_close[d] / daily_close[d - 1] - 1 if d else 0.0
        holding = (1 + holding) * (1 + change) - 1
        strategy = (1 + strategy) * (1 + change * daily_trend[d]) - 1
        momentum = (daily_close[d] / daily_close[max(0, d - 7)] - 1) / (vol * 12)
        tm_grade = max(1.0, min(99.0, 50 + 38 * math.tanh(momentum) + rng.gauss(0, 4)))
        signals.append({
            **ident, "DATE": iso(day), "TRADING_SIGNAL": daily_signal[d],
            "TOKEN_TREND": daily_trend[d], "TRADING_SIGNALS_RETURNS": round(strategy, 4),
            "HOLDING_RETURNS": round(holding, 4), "TM_TRADER_GRADE": round(tm_grade, 2),
            "TM_INVESTOR_GRADE": round(fund, 2), "tm_link": slug,
            "TM_LINK": "https://app.tokenmetrics.com/undefined",
        })
        # The grade endpoints are typed as strings in official declarations: serve some that way.
        as_text = index % 3 == 0
        grade_value: float | str = round(tm_grade, 2)
        grades.append({
            **ident, "DATE": iso(day),
            "TM_GRADE": str(grade_value) if as_text else grade_value,
            "TM_GRADE_SIGNAL": band_label(tm_grade),
            "TM_GRADE_24h_PCT_CHANGE": round(change * 100, 2),
            "QUANT_GRADE": round(max(0.0, min(100.0, tm_grade + rng.gauss(0, 8))), 2),
            "MOMENTUM": "Gaining Momentum" if momentum > 0 else "Losing Momentum",
        })
        fund = max(5.0, min(98.0, fund + rng.gauss(0, 1.6)))
        if rng.random() < 0.04:
            step = rng.choice((-1, 1))
            klass = CLASSES[max(0, min(len(CLASSES) - 1, CLASSES.index(klass) + step))]
        fundamentals.append({
            **ident, "DATE": iso(day),
            "FUNDAMENTAL_GRADE": f"{fund:.2f}" if as_text else round(fund, 2),
            "FUNDAMENTAL_GRADE_CLASS": klass,
            "COMMUNITY_SCORE": round(rng.uniform(40, 95), 1),
            "EXCHANGE_SCORE": round(rng.uniform(40, 99), 1),
            "VC_SCORE": None if index % 4 == 0 else round(rng.uniform(20, 90), 1),
            "TOKENOMICS_SCORE": round(rng.uniform(30, 90), 1),
            "DEFI_SCANNER_SCORE": round(rng.uniform(30, 95), 1),
        })
    return {"trading-signals": signals, "hourly-trading-signals": hourly,
            "tm-grade": grades, "fundamental-grade": fundamentals}


def build() -> dict:
    """The whole data set."""
    rng = random.Random(SEED)
    data: dict = {
        "version": 1,
        "start": iso(START),
        "end": iso(START + timedelta(days=DAYS)),
        "tokens": [
            {"TOKEN_ID": t[0], "TOKEN_SYMBOL": t[1], "TOKEN_NAME": t[2], "tm_link": t[3]}
            for t in TOKENS
        ],
        "trading-signals": [], "hourly-trading-signals": [], "tm-grade": [],
        "fundamental-grade": [],
    }
    for index, token in enumerate(TOKENS):
        for endpoint, rows in token_rows(rng, token, index).items():
            data[endpoint].extend(rows)
    return data


def main() -> None:
    """Write the data set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    payload = json.dumps(build(), separators=(",", ":"), sort_keys=True).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the gzip bytes identical between runs.
    with gzip.GzipFile(args.out, "wb", compresslevel=9, mtime=0) as fh:
        fh.write(payload)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
