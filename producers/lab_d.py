"""Lab D's source: an e-commerce schema (customers, products, orders) in PostgreSQL database
`shop`, seeded with faker, and a workload that inserts, updates and deletes at a chosen rate.

Every table gets `REPLICA IDENTITY FULL`: Debezium then sends the whole old row with updates and
deletes, so a delete event carries every column the sink may need (not only the key), and an
update's `before` shows what changed.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Optional

import psycopg
import typer
from faker import Faker
from psycopg import sql

from lakelab.console import console
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.postgres.client import get_client

LAB = resources().labs.lab_d
DATABASE = LAB.source_database
TABLES = tuple(LAB.source_tables)  # the DDL below creates exactly these (checked by a unit test)

DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.customers (
    id          bigserial PRIMARY KEY,
    email       text        NOT NULL UNIQUE,
    full_name   text        NOT NULL,
    country     text        NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    profile     jsonb       NOT NULL DEFAULT '{{}}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.products (
    id          bigserial PRIMARY KEY,
    sku         text          NOT NULL UNIQUE,
    name        text          NOT NULL,
    category    text          NOT NULL,
    price       numeric(10,2) NOT NULL,
    weight_kg   double precision,
    stock       integer       NOT NULL,
    attributes  jsonb         NOT NULL DEFAULT '{{}}',
    updated_at  timestamp     NOT NULL DEFAULT localtimestamp
);
CREATE TABLE IF NOT EXISTS {schema}.orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint        NOT NULL REFERENCES {schema}.customers (id),
    product_id  bigint        NOT NULL REFERENCES {schema}.products (id),
    quantity    smallint      NOT NULL,
    unit_price  numeric(10,2) NOT NULL,
    total       numeric(12,2) NOT NULL,
    status      text          NOT NULL,
    details     jsonb,
    ship_date   date,
    ordered_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now()
);
ALTER TABLE {schema}.customers REPLICA IDENTITY FULL;
ALTER TABLE {schema}.products  REPLICA IDENTITY FULL;
ALTER TABLE {schema}.orders    REPLICA IDENTITY FULL;
"""

STATUSES = ("new", "paid", "packed", "shipped", "delivered", "returned")
CATEGORIES = ("books", "garden", "kitchen", "toys", "audio", "sports", "office")


def create_schema(settings: Settings, schema: str = "public", drop: bool = False) -> None:
    """Create the three tables (idempotent); `drop` first removes the schema's tables."""
    with get_client(settings, DATABASE, autocommit=True) as conn:
        if drop:
            for table in reversed(TABLES):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table)))
        conn.execute(DDL.format(schema=sql.Identifier(schema).as_string(conn)))


def drop_schema(settings: Settings, schema: str) -> None:
    with get_client(settings, DATABASE, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


class Shop:
    """Generates rows and applies single-statement transactions to one schema of `shop`.
    Keeps the ids it may touch in memory, so no operation violates a foreign key: orders only
    reference "established" customers, and only "fresh" customers (never ordered) are deleted."""

    def __init__(self, settings: Settings, schema: str = "public", seed: int | None = None):
        self.schema = schema
        self.rng = random.Random(seed)
        self.fake = Faker()
        self.fake.seed_instance(seed)
        self.conn = get_client(settings, DATABASE, autocommit=True)
        self.t = {name: sql.Identifier(schema, name).as_string(self.conn) for name in TABLES}
        self.customers: list[int] = []   # may be referenced by new orders
        self.fresh: list[int] = []       # created by the workload, never referenced: deletable
        self.products: list[int] = []
        self.orders: list[int] = []
        self._load_ids()

    def close(self) -> None:
        self.conn.close()

    def _load_ids(self) -> None:
        c = self.conn
        self.customers = [r[0] for r in c.execute(f"SELECT id FROM {self.t['customers']} ORDER BY id")]
        self.products = [r[0] for r in c.execute(f"SELECT id FROM {self.t['products']} ORDER BY id")]
        self.orders = [r[0] for r in c.execute(f"SELECT id FROM {self.t['orders']} ORDER BY id")]

    # -- rows ------------------------------------------------------------------------------
    def _customer(self) -> tuple:
        f = self.fake
        profile = {"phone": f.phone_number(), "city": f.city(), "tags": self.rng.sample(["vip", "b2b", "new", "eu"], 2),
                   "newsletter": self.rng.random() < 0.5}
        return (f"{f.user_name()}.{f.uuid4()[:8]}@{f.free_email_domain()}", f.name(), f.country_code(),
                self.rng.random() < 0.9, json.dumps(profile))

    def _product(self) -> tuple:
        f = self.fake
        attributes = {"color": f.color_name(), "size": self.rng.choice(["S", "M", "L", "XL"]),
                      "rating": round(self.rng.uniform(1, 5), 1)}
        return (f"SKU-{f.uuid4()[:12]}", f.catch_phrase(), self.rng.choice(CATEGORIES),
                Decimal(self.rng.randint(100, 99_999)) / 100, round(self.rng.uniform(0.05, 30), 3),
                self.rng.randint(0, 500), json.dumps(attributes))

    def _order(self) -> tuple:
        quantity = self.rng.randint(1, 5)
        unit_price = Decimal(self.rng.randint(100, 99_999)) / 100
        details = {"channel": self.rng.choice(["web", "app", "store"]), "note": self.fake.sentence(nb_words=6),
                   "gift": self.rng.random() < 0.1}
        return (self.rng.choice(self.customers), self.rng.choice(self.products), quantity, unit_price,
                unit_price * quantity, "new", json.dumps(details))

    # -- seeding ---------------------------------------------------------------------------
    def seed(self, customers: int = 200, products: int = 50, orders: int = 1000) -> None:
        t = self.t
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {t['customers']} (email, full_name, country, active, profile) "
                            "VALUES (%s, %s, %s, %s, %s)", [self._customer() for _ in range(customers)])
            cur.executemany(f"INSERT INTO {t['products']} (sku, name, category, price, weight_kg, stock, attributes) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s)", [self._product() for _ in range(products)])
        self._load_ids()
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {t['orders']} (customer_id, product_id, quantity, unit_price, total, "
                            "status, details) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            [self._order() for _ in range(orders)])
        self._load_ids()

    # -- operations: each one statement in its own transaction --------------------------------
    def insert_order(self) -> tuple[str, int]:
        row = self.conn.execute(
            f"INSERT INTO {self.t['orders']} (customer_id, product_id, quantity, unit_price, total, status, details) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id", self._order()).fetchone()
        self.orders.append(row[0])
        return "orders", row[0]

    def update_order(self) -> tuple[str, int]:
        order_id = self._pick(self.orders)
        status = self.rng.choice(STATUSES)
        ship = self.fake.date_between("-30d", "+30d") if status in ("shipped", "delivered") else None
        self.conn.execute(
            f"UPDATE {self.t['orders']} SET status = %s, ship_date = %s, quantity = %s, "
            f"details = jsonb_set(coalesce(details, '{{}}'), '{{status_history}}', "
            "coalesce(details->'status_history', '[]') || to_jsonb(%s::text)), updated_at = now() WHERE id = %s",
            (status, ship, self.rng.randint(1, 5), status, order_id))
        return "orders", order_id

    def delete_order(self) -> tuple[str, int]:
        order_id = self._pop(self.orders)
        self.conn.execute(f"DELETE FROM {self.t['orders']} WHERE id = %s", (order_id,))
        return "orders", order_id

    def insert_customer(self) -> tuple[str, int]:
        row = self.conn.execute(f"INSERT INTO {self.t['customers']} (email, full_name, country, active, profile) "
                                "VALUES (%s, %s, %s, %s, %s) RETURNING id", self._customer()).fetchone()
        self.fresh.append(row[0])
        if len(self.fresh) > 20:  # older fresh customers become orderable (and undeletable)
            self.customers.append(self.fresh.pop(0))
        return "customers", row[0]

    def update_customer(self) -> tuple[str, int]:
        customer_id = self._pick(self.customers)
        self.conn.execute(
            f"UPDATE {self.t['customers']} SET active = NOT active, full_name = %s, "
            "profile = profile || jsonb_build_object('last_login', %s::text) WHERE id = %s",
            (self.fake.name(), self.fake.iso8601(), customer_id))
        return "customers", customer_id

    def delete_customer(self) -> tuple[str, int]:
        if not self.fresh:
            return self.insert_customer()
        customer_id = self.fresh.pop(self.rng.randrange(len(self.fresh)))
        # Another workload process may have loaded this customer as orderable meanwhile.
        self.conn.execute(f"DELETE FROM {self.t['customers']} c WHERE id = %s "
                          f"AND NOT EXISTS (SELECT 1 FROM {self.t['orders']} o WHERE o.customer_id = c.id)",
                          (customer_id,))
        return "customers", customer_id

    def insert_product(self) -> tuple[str, int]:
        row = self.conn.execute(f"INSERT INTO {self.t['products']} (sku, name, category, price, weight_kg, stock, "
                                "attributes) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                                self._product()).fetchone()
        self.products.append(row[0])
        return "products", row[0]

    def update_product(self) -> tuple[str, int]:
        product_id = self._pick(self.products)
        self.conn.execute(
            f"UPDATE {self.t['products']} SET price = round(price * %s, 2), stock = greatest(stock - %s, 0), "
            "attributes = attributes || jsonb_build_object('rating', %s::numeric), updated_at = localtimestamp "
            "WHERE id = %s",
            (Decimal(self.rng.randint(90, 110)) / 100, self.rng.randint(-5, 5), round(self.rng.uniform(1, 5), 1),
             product_id))
        return "products", product_id

    def _pick(self, ids: list[int]) -> int:
        # Recent rows change more often than old ones, as in a shop.
        return ids[-1 - min(int(self.rng.expovariate(1 / 200)), len(ids) - 1)]

    def _pop(self, ids: list[int]) -> int:
        index = len(ids) - 1 - min(int(self.rng.expovariate(1 / 200)), len(ids) - 1)
        ids[index], ids[-1] = ids[-1], ids[index]
        return ids.pop()


# (operation, weight): orders dominate, every table sees inserts, updates and deletes
# (products are never deleted: orders keep referencing them).
MIX: tuple[tuple[str, int], ...] = (
    ("insert_order", 35), ("update_order", 35), ("delete_order", 10),
    ("insert_customer", 5), ("update_customer", 5), ("delete_customer", 2),
    ("insert_product", 2), ("update_product", 6),
)


@dataclass
class WorkloadStats:
    ops: int = 0
    seconds: float = 0.0
    by_op: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def run_workload(shop: Shop, rate: float, duration: float | None = None, ops: int | None = None,
                 stop: threading.Event | None = None,
                 on_commit: Callable[[str, str, int, float], None] | None = None) -> WorkloadStats:
    """Apply operations at `rate` per second (each its own transaction) until `duration` seconds
    or `ops` operations have passed or `stop` is set. `on_commit(op, table, id, commit_time)` is
    called after each commit. Paced against a fixed schedule: a slow moment is caught up."""
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    stats = WorkloadStats()
    began = time.monotonic()
    interval = 1.0 / rate
    # Draw in blocks: random.choices per operation is a measurable share at high rates.
    block: list[str] = []
    failures = 0
    while True:
        now = time.monotonic()
        if (duration is not None and now - began >= duration) or (ops is not None and stats.ops >= ops) \
                or (stop is not None and stop.is_set()):
            break
        due = began + stats.ops * interval
        if due > now:
            time.sleep(due - now)
        if not block:
            block = shop.rng.choices(names, weights, k=256)
        op = block.pop()
        try:
            table, row_id = getattr(shop, op)()
        except psycopg.errors.Error as exc:  # e.g. a lost race in shared use; the op simply did not happen
            failures += 1
            if failures >= 20:  # not a race: the tables are gone, the server is down...
                raise
            print(f"workload: {op} failed: {exc}", flush=True)
            continue
        failures = 0
        stats.ops += 1
        stats.by_op[op] = stats.by_op.get(op, 0) + 1
        if on_commit is not None:
            on_commit(op, table, row_id, time.time())
    stats.seconds = time.monotonic() - began
    return stats


def workload_init(
    schema: Annotated[str, typer.Option()] = "public",
    customers: Annotated[int, typer.Option()] = 200,
    products: Annotated[int, typer.Option()] = 50,
    orders: Annotated[int, typer.Option()] = 1000,
    drop: Annotated[bool, typer.Option(help="drop the three tables first")] = False,
    seed: Annotated[Optional[int], typer.Option()] = None,
) -> None:
    """Create the shop tables (idempotent) and seed them."""
    settings = get_settings()
    create_schema(settings, schema, drop=drop)
    shop = Shop(settings, schema, seed)
    try:
        shop.seed(customers, products, orders)
        console.print(f"{schema}: {len(shop.customers)} customers, {len(shop.products)} products, "
                      f"{len(shop.orders)} orders")
    finally:
        shop.close()


def workload_run(
    schema: Annotated[str, typer.Option()] = "public",
    rate: Annotated[float, typer.Option(help="operations (transactions) per second")] = 100.0,
    duration: Annotated[Optional[float], typer.Option(help="seconds (default: until Ctrl-C)")] = None,
    ops: Annotated[Optional[int], typer.Option(help="stop after this many operations")] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
) -> None:
    """Apply inserts, updates and deletes at RATE per second."""
    shop = Shop(get_settings(), schema, seed)
    try:
        stats = run_workload(shop, rate, duration, ops)
    except KeyboardInterrupt:
        return
    finally:
        shop.close()
    console.print(f"{stats.ops} operations in {stats.seconds:.1f} s = {stats.rate:.0f} ops/s; "
                  + ", ".join(f"{op} {n}" for op, n in sorted(stats.by_op.items())))
