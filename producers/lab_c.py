"""Lab C sample data, generated with faker, and its ingestion into the raw bucket in each
source's native format:

- structured: `sales_data_<city>.csv` (location, Total_Sales, product and date columns), the
  `..._different_schema.csv` variant, and a SQL table (`company.customers` in PostgreSQL,
  exported as CSV with a JSON schema sidecar);
- semi-structured: JSON Lines web events;
- unstructured: web server access log lines (combined log format).

`lakelab lab-c ingest sales` uploads to `s3://raw/sales/...`, which starts the sales workflow
when its watcher runs.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from faker import Faker
from psycopg import sql

from lakelab.console import console, fail
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.postgres import client as postgres
from services.s3 import client as s3

LAB = resources().labs.lab_c
SALES_COLUMNS = ["Order_ID", "Date", "Customer", "Product", "Category", "Quantity", "Unit_Price", "Total_Sales",
                 "Payment_Method", "location"]
# Same facts, another schema: renamed columns, another date format. The workflow must reject it.
DIFFERENT_COLUMNS = ["Order_ID", "Order_Date", "Customer", "Product", "Quantity", "Unit_Price", "Revenue", "Store_City"]
PRODUCTS = [("Wireless Mouse", "Electronics"), ("USB-C Hub", "Electronics"), ("Desk Lamp", "Home"),
            ("Notebook A5", "Stationery"), ("Water Bottle", "Home"), ("Backpack", "Accessories"),
            ("Headphones", "Electronics"), ("Coffee Mug", "Home"), ("Fountain Pen", "Stationery")]
PAYMENTS = ["card", "cash", "paypal", "voucher"]
KINDS = ["sales", "sales-different-schema", "events", "logs", "sql"]


def _faker(seed: int) -> Faker:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    return fake


def sales_rows(n: int = 200, location: str = "London", seed: int = 42, start: date = date(2024, 1, 1),
               missing: dict[str, int] | None = None, outliers: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Sales lines. Quantity 1-5 and Unit_Price 20-30 keep every column free of outliers by
    robust z-score at 3.5 (checked for 300 seeds, 40 to 200 rows), so the `outliers` injected
    (value x 1000) and `missing` cells (None) are exactly what a quality check must find: each
    on its own row, never the same cell twice."""
    fake, rng = _faker(seed), random.Random(seed)
    rows = []
    for i in range(n):
        product, category = rng.choice(PRODUCTS)
        quantity, price = rng.randint(1, 5), round(rng.uniform(20, 30), 2)
        rows.append({
            "Order_ID": 100_000 + i, "Date": (start + timedelta(days=rng.randrange(90))).isoformat(),
            "Customer": fake.name(), "Product": product, "Category": category, "Quantity": quantity,
            "Unit_Price": price, "Total_Sales": round(quantity * price, 2), "Payment_Method": rng.choice(PAYMENTS),
            "location": location,
        })
    damage = [(c, "outlier") for c, k in (outliers or {}).items() for _ in range(k)]
    damage += [(c, "missing") for c, k in (missing or {}).items() for _ in range(k)]
    if len(damage) > n:
        raise ValueError(f"{len(damage)} damaged cells need at least as many rows, not {n}")
    for index, (column, kind) in zip(rng.sample(range(n), len(damage)), damage):
        rows[index][column] = None if kind == "missing" else round(rows[index][column] * 1000, 2)
    return rows


def to_csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    return out.getvalue().encode()


def sales_csv(n: int = 200, location: str = "London", seed: int = 42, **damage: Any) -> bytes:
    return to_csv(sales_rows(n, location, seed, **damage), SALES_COLUMNS)


def different_schema_csv(n: int = 200, location: str = "London", seed: int = 42) -> bytes:
    rows = [{"Order_ID": r["Order_ID"], "Order_Date": datetime.fromisoformat(r["Date"]).strftime("%d/%m/%Y"),
             "Customer": r["Customer"], "Product": r["Product"], "Quantity": r["Quantity"],
             "Unit_Price": r["Unit_Price"], "Revenue": r["Total_Sales"], "Store_City": r["location"]}
            for r in sales_rows(n, location, seed)]
    return to_csv(rows, DIFFERENT_COLUMNS)


def json_events(n: int = 200, seed: int = 42) -> bytes:
    """Web events, one JSON object a line, with nested objects and optional fields."""
    fake, rng = _faker(seed), random.Random(seed)
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    lines = []
    for i in range(n):
        kind = rng.choices(["page_view", "add_to_cart", "purchase"], [0.7, 0.2, 0.1])[0]
        product, category = rng.choice(PRODUCTS)
        event: dict[str, Any] = {
            "event_id": fake.uuid4(), "ts": (start + timedelta(seconds=37 * i)).isoformat(),
            "event_type": kind, "user_id": rng.randint(1, 500), "session_id": fake.md5()[:12],
            "page": f"/{category.lower()}/{product.lower().replace(' ', '-')}",
            "device": {"os": rng.choice(["ios", "android", "windows", "macos"]), "browser": fake.user_agent()[:40]},
            "geo": {"city": fake.city(), "country": "GB"},
        }
        if kind != "page_view":
            event["product"] = {"name": product, "category": category, "price": round(rng.uniform(10, 50), 2)}
        lines.append(json.dumps(event))
    return ("\n".join(lines) + "\n").encode()


def server_logs(n: int = 200, seed: int = 42) -> bytes:
    """Access log lines in the combined log format."""
    fake, rng = _faker(seed), random.Random(seed)
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    lines = []
    for i in range(n):
        when = (start + timedelta(seconds=11 * i)).strftime("%d/%b/%Y:%H:%M:%S +0000")
        method, path = rng.choice([("GET", "/"), ("GET", fake.uri_path()), ("POST", "/cart"), ("GET", "/api/products")])
        status = rng.choices([200, 301, 404, 500], [0.85, 0.05, 0.07, 0.03])[0]
        lines.append(f'{fake.ipv4_public()} - - [{when}] "{method} {path} HTTP/1.1" {status} {rng.randint(200, 50_000)} '
                     f'"{fake.url()}" "{fake.user_agent()}"')
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------- the SQL source

SQL_DATABASE = LAB.source_database
CUSTOMERS_DDL = """CREATE TABLE IF NOT EXISTS customers (
    customer_id    integer PRIMARY KEY,
    name           text NOT NULL,
    email          text NOT NULL,
    city           text,
    country        text NOT NULL,
    signup_date    date NOT NULL,
    loyalty_tier   text NOT NULL,
    lifetime_value numeric(10, 2) NOT NULL
)"""


def seed_customers(settings: Settings, n: int = 200, seed: int = 42) -> int:
    """Creates `company.customers` (database created if missing) and upserts `n` rows."""
    with postgres.get_client(settings, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SQL_DATABASE,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SQL_DATABASE)))
    fake, rng = _faker(seed), random.Random(seed)
    rows = [(i, fake.name(), fake.email(), fake.city(), "GB", fake.date_between(date(2020, 1, 1), date(2024, 1, 1)),
             rng.choice(["bronze", "silver", "gold"]), round(rng.uniform(0, 5000), 2)) for i in range(1, n + 1)]
    with postgres.get_client(settings, SQL_DATABASE) as conn:
        conn.execute(CUSTOMERS_DDL)
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE
                   SET name = EXCLUDED.name, email = EXCLUDED.email, city = EXCLUDED.city, country = EXCLUDED.country,
                       signup_date = EXCLUDED.signup_date, loyalty_tier = EXCLUDED.loyalty_tier,
                       lifetime_value = EXCLUDED.lifetime_value""", rows)
    return n


def export_table(settings: Settings, table: str = "customers") -> tuple[bytes, dict[str, Any]]:
    """The table as CSV (COPY) and its schema from information_schema."""
    with postgres.get_client(settings, SQL_DATABASE) as conn:
        columns = conn.execute("""SELECT column_name, data_type, is_nullable FROM information_schema.columns
                                  WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position""",
                               (table,)).fetchall()
        out = io.BytesIO()
        copy_sql = sql.SQL("COPY (SELECT * FROM {} ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER)").format(
            sql.Identifier(table))
        with conn.cursor().copy(copy_sql) as copy:
            for chunk in copy:
                out.write(chunk)
    schema = {"database": SQL_DATABASE, "table": table, "exported_at": datetime.now(timezone.utc).isoformat(),
              "columns": [{"name": n, "type": t, "nullable": null == "YES"} for n, t, null in columns]}
    return out.getvalue(), schema


# ---------------------------------------------------------------- ingestion


def ingest(settings: Settings, kind: str, user: str | None = None, prefix: str = "", rows: int = 200,
           seed: int = 42, location: str = "London") -> list[tuple[str, str, str | None]]:
    """Generates one kind of sample data and uploads it to the raw bucket; returns
    (bucket, key, version id) of what was written."""
    client = s3.get_client(settings, user)
    today, stamp = date.today().isoformat(), time.strftime("%H%M%S")
    city = location.lower().replace(" ", "_")
    if kind == "sales":
        objects = [(f"sales/sales_data_{city}.csv", sales_csv(rows, location, seed), "text/csv")]
    elif kind == "sales-different-schema":
        objects = [(f"sales/sales_data_{city}_different_schema.csv", different_schema_csv(rows, location, seed), "text/csv")]
    elif kind == "events":
        objects = [(f"events/dt={today}/events-{stamp}.json", json_events(rows, seed), "application/x-ndjson")]
    elif kind == "logs":
        objects = [(f"logs/dt={today}/access-{stamp}.log", server_logs(rows, seed), "text/plain")]
    elif kind == "sql":
        seed_customers(settings, rows, seed)
        body, schema = export_table(settings, "customers")
        base = f"sql/{SQL_DATABASE}/customers/dt={today}/customers"
        objects = [(f"{base}.csv", body, "text/csv"),
                   (f"{base}.schema.json", json.dumps(schema, indent=2).encode(), "application/json")]
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    written = []
    for key, body, content_type in objects:
        response = client.put_object(Bucket=LAB.raw_bucket, Key=f"{prefix}{key}", Body=body, ContentType=content_type)
        written.append((LAB.raw_bucket, f"{prefix}{key}", response.get("VersionId")))
    return written


def generate(out: Path, rows: int = 200, seed: int = 42, location: str = "London") -> list[Path]:
    """The sample files on disk (the SQL table is not a file: see `seed_customers`)."""
    out.mkdir(parents=True, exist_ok=True)
    city = location.lower().replace(" ", "_")
    files = {f"sales_data_{city}.csv": sales_csv(rows, location, seed),
             f"sales_data_{city}_different_schema.csv": different_schema_csv(rows, location, seed),
             "events.json": json_events(rows, seed), "access.log": server_logs(rows, seed)}
    for name, body in files.items():
        (out / name).write_bytes(body)
    return [out / name for name in files]


def ingest_command(
    kinds: Annotated[list[str], typer.Argument(help=f"what to ingest: {', '.join(KINDS)} or all")],
    user: Annotated[str | None, typer.Option(help="upload with this declared user's S3 keys (e.g. ingest)")] = None,
    prefix: Annotated[str, typer.Option(help="key prefix inside the raw bucket")] = "",
    rows: Annotated[int, typer.Option(help="records per dataset")] = 200,
    seed: Annotated[int, typer.Option()] = 42,
    location: Annotated[str, typer.Option(help="the sales file's city")] = "London",
) -> None:
    """Generate and upload sample data to s3://raw/, each in its native format."""
    settings = get_settings()
    selected = KINDS if kinds == ["all"] else kinds
    for kind in selected:
        try:
            for bucket, key, version in ingest(settings, kind, user, prefix, rows, seed, location):
                console.print(f"[green]put[/] s3://{bucket}/{key} (version {version})")
        except (ClientError, KeyError, ValueError) as exc:
            fail(f"{kind}: {s3.describe_error(exc, user)}")


def generate_command(
    out: Annotated[Path, typer.Argument(help="folder for the sample files")] = Path("samples"),
    rows: Annotated[int, typer.Option()] = 200,
    seed: Annotated[int, typer.Option()] = 42,
    location: Annotated[str, typer.Option()] = "London",
) -> None:
    """Write the sample files to a local folder."""
    for path in generate(out, rows, seed, location):
        console.print(f"wrote {path}")
