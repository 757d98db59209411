"""Lab D workload: create and seed the `shop` tables, then insert, update and delete at a rate.

    python -m producers.cdc_workload init [--schema public] [--customers 200 --products 50 --orders 1000] [--drop]
    python -m producers.cdc_workload run --rate 200 --duration 60 [--schema public] [--seed 1]
"""

from __future__ import annotations

import argparse

from lakelab.settings import get_settings
from producers.shop import Shop, create_schema, run_workload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cdc_workload", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create the tables (idempotent) and seed them")
    init.add_argument("--schema", default="public")
    init.add_argument("--customers", type=int, default=200)
    init.add_argument("--products", type=int, default=50)
    init.add_argument("--orders", type=int, default=1000)
    init.add_argument("--drop", action="store_true", help="drop the three tables first")
    init.add_argument("--seed", type=int, default=None)
    run = commands.add_parser("run", help="apply inserts, updates and deletes at --rate per second")
    run.add_argument("--schema", default="public")
    run.add_argument("--rate", type=float, default=100.0, help="operations (transactions) per second")
    run.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    run.add_argument("--ops", type=int, default=None, help="stop after this many operations")
    run.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.command == "init":
        create_schema(settings, args.schema, drop=args.drop)
        shop = Shop(settings, args.schema, args.seed)
        try:
            shop.seed(args.customers, args.products, args.orders)
            print(f"{args.schema}: {len(shop.customers)} customers, {len(shop.products)} products, "
                  f"{len(shop.orders)} orders")
        finally:
            shop.close()
        return
    shop = Shop(settings, args.schema, args.seed)
    try:
        stats = run_workload(shop, args.rate, args.duration, args.ops)
    except KeyboardInterrupt:
        return
    finally:
        shop.close()
    print(f"{stats.ops} operations in {stats.seconds:.1f} s = {stats.rate:.0f} ops/s; "
          + ", ".join(f"{op} {n}" for op, n in sorted(stats.by_op.items())))


if __name__ == "__main__":
    main()
