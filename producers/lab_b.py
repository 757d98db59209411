"""Lab B generator: replay a Bitstamp-format trades CSV into a topic (the Kinesis put_record /
put_records producer of the lab), and write a realistic sample file.

The CSV needs a header naming at least `transaction_ts, symbol, price, amount, type, trans_id`
(`dollar_amount` is computed as price * amount when absent; other columns such as `date` are
ignored; `unix`/`timestamp` are accepted for `transaction_ts`, `tid`/`id` for `trans_id`). A file
without a header is read by position: `transaction_ts, [date,] symbol, price, amount,
dollar_amount, type, trans_id`. Each record is sent as one JSON line keyed by symbol, as the
lab's generator does.

    lakelab lab-b sample --out trades.csv
    lakelab lab-b replay trades.csv --topic stockdata --rate 50 --batch 100 --loops 1
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from confluent_kafka import KafkaException, Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakelab.console import err_console as console
from lakelab.console import fail
from lakelab.resources import resources
from lakelab.settings import get_settings

COLUMNS = ("transaction_ts", "symbol", "price", "amount", "dollar_amount", "type", "trans_id")
ALIASES = {"unix": "transaction_ts", "timestamp": "transaction_ts", "ts": "transaction_ts",
           "tid": "trans_id", "id": "trans_id", "side": "type"}
CASTS = {"transaction_ts": int, "price": float, "amount": float, "dollar_amount": float, "trans_id": int,
         "symbol": str, "type": str}
# Start of the lab's data (2020-10-01T00:00:00Z), per-symbol trades/s, price and typical size.
SAMPLE_START = 1_601_510_400
MARKETS = {"BTC_USD": (0.20, 10_800.0, 0.15), "ETH_USD": (0.12, 360.0, 4.0), "LTC_USD": (0.05, 46.5, 25.0)}



class TradeFileError(ValueError):
    """A row of the CSV cannot become a trade; the message names the file and line."""


@dataclass(frozen=True)
class Trade:
    transaction_ts: int
    symbol: str
    price: float
    amount: float
    dollar_amount: float
    type: str
    trans_id: int

    def to_json(self) -> bytes:
        return (json.dumps(self.__dict__, separators=(",", ":")) + "\n").encode()


def read_trades(path: Path) -> Iterator[Trade]:
    """The trades of a Bitstamp-format CSV, in file order. Raises TradeFileError at the first bad row."""
    with path.open(newline="") as handle:
        rows = csv.reader(handle)
        first = next(rows, None)
        if first is None:
            raise TradeFileError(f"{path}: empty file, expected a header or trade rows")
        header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in first]
        if first and first[0].strip().lstrip("-").isdigit():  # no header: positional columns
            header = list(COLUMNS) if len(first) == 7 else ["transaction_ts", "date", *COLUMNS[1:]]
            yield _trade(path, 1, header, first)
        missing = {c for c in COLUMNS if c != "dollar_amount"} - set(header)
        if missing:
            raise TradeFileError(f"{path}:1: header lacks {', '.join(sorted(missing))} (found: {', '.join(header)})")
        for line, row in enumerate(rows, start=2):
            if row and any(cell.strip() for cell in row):
                yield _trade(path, line, header, row)


def _trade(path: Path, line: int, header: list[str], row: list[str]) -> Trade:
    if len(row) != len(header):
        raise TradeFileError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
    cells = dict(zip(header, (cell.strip() for cell in row)))
    try:
        values = {name: CASTS[name](float(cells[name]) if CASTS[name] is int else cells[name])
                  for name in COLUMNS if name in cells and cells[name] != ""}
    except ValueError as exc:
        raise TradeFileError(f"{path}:{line}: {exc}") from exc
    values.setdefault("dollar_amount", values.get("price", 0.0) * values.get("amount", 0.0))
    missing = [c for c in COLUMNS if c not in values]
    if missing:
        raise TradeFileError(f"{path}:{line}: empty {', '.join(missing)}")
    return Trade(**values)


def sample_trades(hours: int = 3, seed: int = 2020, outlier_factor: float = 10_000.0) -> list[Trade]:
    """Poisson trade arrivals per symbol with random-walk prices and log-normal sizes, over
    `hours` of event time from 2020-10-01T00:00Z, plus one BTC_USD buy whose dollar amount is
    `outlier_factor` times the largest other trade's (the lab's hand-made trade), placed after at
    least four BTC_USD buys of the previous 30 seconds so the real-time job has a window."""
    rng = random.Random(seed)
    rows: list[tuple[float, str, float, float, str]] = []
    for symbol, (rate, price, size) in MARKETS.items():
        t = float(SAMPLE_START)
        while (t := t + rng.expovariate(rate)) < SAMPLE_START + hours * 3600:
            price *= math.exp(rng.gauss(0, 0.0006))
            amount = round(size * rng.lognormvariate(-0.5, 0.8), 8)
            rows.append((t, symbol, round(price, 2), amount, rng.choice(("buy", "sell"))))
    rows.sort()
    trades = [Trade(int(t), s, p, a, round(p * a, 6), side, 124_289_000 + i)
              for i, (t, s, p, a, side) in enumerate(rows)]
    largest = max(t.dollar_amount for t in trades)
    btc_buys = [i for i, t in enumerate(trades) if t.symbol == "BTC_USD" and t.type == "buy"]
    at = next(i for n, i in enumerate(btc_buys) if n >= 3 and i > len(trades) // 5
              and trades[i].transaction_ts - trades[btc_buys[n - 3]].transaction_ts <= 25)
    base = trades[at]
    dollar_amount = round(largest * outlier_factor + 0.01, 2)  # at least factor x, after rounding
    outlier = Trade(base.transaction_ts, "BTC_USD", base.price, round(dollar_amount / base.price, 8),
                    dollar_amount, "buy", base.trans_id + 1)
    return [*trades[:at + 1], outlier, *(Trade(**{**t.__dict__, "trans_id": t.trans_id + 1}) for t in trades[at + 1:])]


def write_csv(trades: list[Trade], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([getattr(t, c) for c in COLUMNS] for t in trades)
    return out


@dataclass
class ReplayStats:
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0


def replay(bootstrap: str, topic: str, trades: list[Trade], rate: float = 0.0, batch: int = 1,
           loops: int = 1, speedup: float = 0.0, progress: bool = True) -> ReplayStats:
    """Send `trades` to `topic` keyed by symbol. `batch` 1 waits for each record's acknowledgement
    (put_record); more sends that many, then waits for all (put_records). `rate` caps records/s;
    `speedup` instead paces by event time (1 = real time, 60 = a minute of trades per second).
    `loops` 0 repeats forever. Raises if any record was not acknowledged."""
    stats = ReplayStats()
    errors: list[str] = []

    def acknowledged(err, _msg) -> None:
        if err is not None:
            stats.failed += 1
            errors.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                         "partitioner": "murmur2_random",  # as Java clients: same key, same partition
                         "compression.type": "lz4"})
    began = time.monotonic()
    total = len(trades) * loops if loops else None
    with Progress(TextColumn("[bold]replay[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task(topic, total=total)
        loop = 0
        while loops == 0 or loop < loops:
            loop += 1
            first_ts, started = trades[0].transaction_ts if trades else 0, time.monotonic()
            for i, trade in enumerate(trades):
                due = ((trade.transaction_ts - first_ts) / speedup if speedup else
                       (i / rate if rate else 0.0))
                if (wait := started + due - time.monotonic()) > 0:
                    producer.flush(wait)
                    time.sleep(max(0.0, started + due - time.monotonic()))
                while True:
                    try:
                        producer.produce(topic, value=trade.to_json(), key=trade.symbol.encode(),
                                         on_delivery=acknowledged)
                        break
                    except BufferError:
                        producer.poll(0.1)
                stats.sent += 1
                if stats.sent % batch == 0:
                    producer.flush(30)
                    bar.update(task, completed=stats.sent)
                else:
                    producer.poll(0)
            remaining = producer.flush(60)
            bar.update(task, completed=stats.sent)
            if remaining:
                raise KafkaException(f"{remaining} records to {topic} not acknowledged within 60 s")
    stats.seconds = time.monotonic() - began
    if errors:
        raise RuntimeError(f"{stats.failed} of {stats.sent} records to {topic} failed, first: {errors[0]}")
    return stats


def sample_command(
    out: Annotated[Path, typer.Option(help="CSV to write")] = Path(".lakelab/lab_b/trades_sample.csv"),
    hours: Annotated[int, typer.Option(help="hours of event time")] = 3,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same file)")] = 2020,
) -> None:
    """Write a realistic Bitstamp-format trades CSV (BTC_USD, ETH_USD, LTC_USD, one huge trade)."""
    trades = sample_trades(hours=hours, seed=seed)
    write_csv(trades, out)
    big = max(trades, key=lambda t: t.dollar_amount)
    console.print(f"wrote {len(trades)} trades over {hours} h to {out}; hand-made trade: "
                  f"trans_id {big.trans_id} ({big.symbol} {big.type}, ${big.dollar_amount:,.2f})")


def replay_command(
    path: Annotated[Path, typer.Argument(help="Bitstamp-format CSV", exists=True, dir_okay=False)],
    topic: Annotated[str, typer.Option(help="topic to send to")] = resources().labs.lab_b.topic,
    rate: Annotated[float, typer.Option(help="records per second, 0 = as fast as possible")] = 0.0,
    speedup: Annotated[float, typer.Option(help="pace by event time instead (1 = real time)")] = 0.0,
    batch: Annotated[int, typer.Option(min=1, help="1 = put_record (wait each), N = put_records of N")] = 1,
    loops: Annotated[int, typer.Option(min=0, help="times to replay the file, 0 = forever")] = 1,
) -> None:
    """Replay a trades CSV into a topic, one record at a time or in batches."""
    try:
        trades = list(read_trades(path))
    except TradeFileError as exc:
        fail(str(exc))
    stats = replay(get_settings().kafka_bootstrap, topic, trades, rate=rate, batch=batch, loops=loops,
                   speedup=speedup)
    console.print(f"sent {stats.sent} records to {topic} in {stats.seconds:.1f} s "
                  f"({stats.sent / max(stats.seconds, 1e-9):.0f} records/s, batch {batch})")
