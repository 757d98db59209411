"""Lab B's real-time analytics (the Kinesis Analytics application): flag trades far above the
recent average of their (symbol, type).

For each trade, the window is the trades of the same (symbol, type) whose `transaction_ts` lies
in the 30 seconds of event time before it (the trade itself excluded). The trade is flagged
when `dollar_amount > 4 x avg(window)`; with an empty window there is nothing to compare and no
alert. (The lab's SQL, `RANGE INTERVAL '30' SECOND PRECEDING` on ROWTIME, also counts the
current row in the average, and uses arrival time.) Alongside the lab's other figures, over the
last 30 rows of the key: sum, count, highest trans_id.

Alerts go to the alerts topic (key = symbol, JSON), then to the alert handler: a log line and,
if configured, a webhook POST. Delivery to the lake is the Firehose stand-in run on that topic.
At least once: offsets are committed after the alerts they caused are acknowledged; the windows
are in memory, so after a restart the first 30 seconds compare against partial windows.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import httpx
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.error import KafkaError
from tenacity import retry, stop_after_attempt, wait_exponential

from aws.firehose.delivery import classify
from lakelab.resources import resources
from lakelab.settings import Settings

log = logging.getLogger(__name__)
LAB = resources().labs.lab_b
REQUIRED = ("transaction_ts", "symbol", "dollar_amount", "type", "trans_id")


@dataclass(frozen=True)
class AlertConfig:
    source_topic: str = LAB.topic
    alerts_topic: str = LAB.alerts_topic
    window_seconds: int = 30
    factor: float = 4.0
    rows: int = 30
    symbols: tuple[str, ...] = ()  # empty = every symbol; the lab watched BTC_USD only
    webhook: str = ""
    group_id: str = ""

    @property
    def group(self) -> str:
        return self.group_id or f"trade-alerts-{self.source_topic}-{self.alerts_topic}"


class Detector:
    """Sliding windows per (symbol, type) over event time."""

    def __init__(self, window_seconds: int = 30, factor: float = 4.0, rows: int = 30) -> None:
        self.window_seconds, self.factor, self.rows = window_seconds, factor, rows
        self.recent: dict[tuple[str, str], deque] = defaultdict(deque)  # (ts, dollar_amount)
        self.last_rows: dict[tuple[str, str], deque] = defaultdict(lambda: deque(maxlen=rows))  # (amount, trans_id)
        self.newest: dict[tuple[str, str], int] = {}

    def observe(self, trade: dict) -> dict | None:
        key = (str(trade["symbol"]), str(trade["type"]))
        ts, amount = int(float(trade["transaction_ts"])), float(trade["dollar_amount"])
        window = [a for t, a in self.recent[key] if ts - self.window_seconds <= t <= ts]
        rows = self.last_rows[key]
        alert = None
        if window and amount > self.factor * (avg := sum(window) / len(window)):
            alert = {**trade, "avg_last_30_seconds": avg, "cnt_last_30_seconds": len(window),
                     "sum_last_30_rows": sum(a for a, _ in rows) + amount, "cnt_last_30_rows": len(rows) + 1,
                     "max_trans_id": max([int(trade["trans_id"]), *(i for _, i in rows)]),
                     "factor": self.factor, "window_seconds": self.window_seconds}
        recent = self.recent[key]
        recent.append((ts, amount))
        rows.append((amount, int(trade["trans_id"])))
        self.newest[key] = max(self.newest.get(key, ts), ts)
        while recent and recent[0][0] < self.newest[key] - self.window_seconds:
            recent.popleft()
        return alert


def detect_all(trades: list[dict], window_seconds: int = 30, factor: float = 4.0) -> list[dict]:
    """The alerts of a list of trades, in order (what the streaming job emits for them)."""
    detector = Detector(window_seconds, factor)
    return [a for t in trades if (a := detector.observe(t)) is not None]


def handle_alert(alert: dict, webhook: str = "") -> None:
    """The alert 'Lambda': a log line, and a POST of the alert to `webhook` when set."""
    log.warning("ALERT %s %s trans_id=%s dollar_amount=%.2f > %.0f x avg %.2f of %d trade(s) in %d s",
                alert["symbol"], alert["type"], alert["trans_id"], alert["dollar_amount"], alert["factor"],
                alert["avg_last_30_seconds"], alert["cnt_last_30_seconds"], alert["window_seconds"])
    if webhook:
        @retry(stop=stop_after_attempt(3), wait=wait_exponential(0.2, max=2), reraise=True)
        def post() -> None:
            httpx.post(webhook, json=alert, timeout=5).raise_for_status()

        try:
            post()
        except httpx.HTTPError as exc:
            log.error("alert webhook %s failed for trans_id=%s: %s (the alert is on the topic)", webhook,
                      alert["trans_id"], exc)


def run(settings: Settings, config: AlertConfig, stop: threading.Event | None = None) -> dict:
    """Consume trades, emit alerts, until `stop` is set. Returns counters."""
    stop = stop or threading.Event()
    detector = Detector(config.window_seconds, config.factor, config.rows)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": config.group,
                         "group.instance.id": f"{config.group}-0",  # static: restarts resume at once
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 0})
    counts = {"trades": 0, "alerts": 0, "rejected": 0}
    failures: list[str] = []
    consumer.subscribe([config.source_topic])
    last_commit = time.monotonic()
    try:
        while not stop.is_set():
            first = consumer.poll(0.2)  # returns as soon as one record is there; then drain what else is
            for message in ([first, *consumer.consume(num_messages=500, timeout=0)] if first is not None else []):
                if message.error():
                    if message.error().fatal():
                        raise KafkaException(message.error())
                    continue
                trade, error, reason = classify(message.value(), REQUIRED)
                if trade is None:
                    counts["rejected"] += 1
                    log.warning("%s[%d]@%d skipped (%s): %s; the Firehose files it under the error prefix",
                                message.topic(), message.partition(), message.offset(), error, reason)
                    continue
                counts["trades"] += 1
                if config.symbols and trade["symbol"] not in config.symbols:
                    continue
                try:
                    alert = detector.observe(trade)
                except (TypeError, ValueError) as exc:
                    counts["rejected"] += 1
                    log.warning("%s[%d]@%d skipped: bad value (%s)", message.topic(), message.partition(),
                                message.offset(), exc)
                    continue
                if alert is not None:
                    alert["trade_produced_ms"] = message.timestamp()[1]
                    alert["detected_ms"] = int(time.time() * 1000)
                    producer.produce(config.alerts_topic, key=str(alert["symbol"]).encode(),
                                     value=json.dumps(alert).encode(),
                                     on_delivery=lambda err, _m: err and failures.append(str(err)))
                    producer.poll(0)
                    counts["alerts"] += 1
                    handle_alert(alert, config.webhook)
            if time.monotonic() - last_commit >= 1.0:
                _commit(consumer, producer, failures)
                last_commit = time.monotonic()
        _commit(consumer, producer, failures)
    finally:
        consumer.close()
    return counts


def _commit(consumer, producer, failures: list[str]) -> None:
    if producer.flush(30) or failures:
        raise KafkaException(f"alerts not acknowledged: {failures[:1] or 'timeout'}; offsets left uncommitted")
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise


def run_until_signalled(settings: Settings, config: AlertConfig) -> dict:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return run(settings, config, stop)
