"""Read-only by construction: a statement reaches Trino only if sqlglot (Trino dialect) parses it
as one SELECT / WITH / VALUES / SHOW / DESCRIBE / EXPLAIN statement that writes nothing."""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

# sqlglot logs a warning each time it falls back to a raw `Command` (SHOW, EXPLAIN, ...).
logging.getLogger("sqlglot").setLevel(logging.ERROR)

ALLOWED = "SELECT, WITH, VALUES, SHOW, DESCRIBE and EXPLAIN"

# Expressions that change data, metadata or session state wherever they appear in a tree.
_WRITES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name) for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Grant",
        "Revoke", "Command", "Use", "Set", "Comment", "Refresh", "Analyze", "Transaction", "Commit",
        "Rollback", "Copy", "LoadData", "Cache", "Uncache", "Pragma", "Kill",
    ) if hasattr(exp, name)
)
_EXPLAIN_OPTIONS = re.compile(r"^\s*(?:ANALYZE\b\s*)?(?:VERBOSE\b\s*)?(?:\((?:[^()']|'[^']*')*\)\s*)?", re.I)


class NotReadOnly(ValueError):
    """The statement is not one the API runs; `statement_type` names what it is."""

    def __init__(self, statement_type: str, message: str | None = None) -> None:
        self.statement_type = statement_type
        super().__init__(message or f"{statement_type} statements are not allowed: the query API is "
                                    f"read-only and runs only {ALLOWED} statements")


class Unparsable(ValueError):
    """sqlglot cannot parse the text; Trino is asked for the authoritative syntax error."""


class TooComplex(ValueError):
    """The statement is over the guard's size or nesting budget: refused without asking Trino."""


@dataclass(frozen=True)
class Checked:
    sql: str  # the statement to send to Trino (trailing semicolons removed)
    statement_type: str  # SELECT, SHOW, DESCRIBE, EXPLAIN, ...


def statement_type(node: exp.Expression) -> str:
    """The SQL name of a parsed statement, as a user would say it: `DROP TABLE`, `INSERT`, ..."""
    if isinstance(node, exp.Command):
        words = [str(node.this).upper()]
        rest = node.expression.name if isinstance(node.expression, exp.Expression) else str(node.expression or "")
        if words[0] in {"ALTER", "SET", "SHOW"} and rest.split():
            words.append(rest.split()[0].upper())
        return " ".join(words)
    if isinstance(node, exp.Select) and node.args.get("into"):
        return "SELECT INTO"
    if isinstance(node, (exp.Query, exp.Subquery)):
        return "WITH" if node.args.get("with") or node.args.get("with_") else "SELECT"
    kind = node.args.get("kind")
    names = {"TruncateTable": "TRUNCATE TABLE", "Use": "USE", "Set": "SET SESSION",
             "Transaction": "START TRANSACTION", "Refresh": "REFRESH MATERIALIZED VIEW"}
    name = names.get(type(node).__name__, type(node).__name__.upper())
    if isinstance(kind, str) and kind and isinstance(node, (exp.Create, exp.Drop, exp.Alter)):
        name = f"{name} {kind.upper()}"
        if isinstance(node, exp.Create) and isinstance(node.expression, exp.Query) and kind.upper() == "TABLE":
            name += " AS SELECT"
    return name


def _strip(sql: str) -> str:
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def check(sql: str, max_chars: int = 100_000) -> Checked:
    """Return the statement if it is read-only; raise NotReadOnly (naming the statement type),
    Unparsable (sqlglot cannot tell), TooComplex (over `max_chars`, or nested deeper than the
    parser can follow) or ValueError (empty, several statements)."""
    text = _strip(sql)
    if len(text) > max_chars:
        raise TooComplex(f"the statement is {len(text):,} characters long; the limit is {max_chars:,}")
    try:
        statements = [s for s in sqlglot.parse(text, read="trino") if s is not None] if text else []
    except (ParseError, TokenError) as exc:
        raise Unparsable(str(exc).splitlines()[0]) from exc
    except RecursionError as exc:  # sqlglot's parser recurses once per nesting level
        raise TooComplex("the statement is nested too deeply (parentheses, function calls or "
                         "subqueries) for the read-only check; flatten it, e.g. with WITH") from exc
    if not statements:
        raise ValueError("the query is empty")
    if len(statements) > 1:
        raise NotReadOnly("MULTIPLE STATEMENTS", f"send one statement per request (got {len(statements)}: "
                                                 f"{', '.join(statement_type(s) for s in statements)})")
    (node,) = statements
    try:
        return Checked(sql=text, statement_type=_check_node(node, max_chars))
    except RecursionError as exc:
        raise TooComplex("the statement is nested too deeply for the read-only check; flatten it, "
                         "e.g. with WITH") from exc


# Parsing a long statement takes seconds of CPU: it runs here, not on the event loop, and two at a
# time at most so that a flood of huge statements cannot take every thread.
_CHECKERS = ThreadPoolExecutor(2, thread_name_prefix="sql-check")
# A statement this short parses in about half a millisecond (about 5 ms at worst, nested as deep as
# its length allows): checked on the event loop, it saves a thread handover there and back per
# request (docs/bench.md, API).
INLINE_CHECK_CHARS = 512


async def check_in_background(sql: str, max_chars: int, timeout_s: float) -> Checked:
    """`check`, off the event loop unless the statement is short; TooComplex when it does not
    finish within `timeout_s` (the parse is left to finish in its thread, bounded by `max_chars`)."""
    if len(sql) <= INLINE_CHECK_CHARS:
        return check(sql, max_chars)
    future = asyncio.get_running_loop().run_in_executor(_CHECKERS, check, sql, max_chars)
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)
    except TimeoutError:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise TooComplex(f"the read-only check did not finish within {timeout_s:g} s; send a shorter or "
                         f"simpler statement") from None


def _check_node(node: exp.Expression, max_chars: int) -> str:
    kind = statement_type(node)
    if isinstance(node, exp.Command):
        keyword = str(node.this).upper()
        rest = node.expression.name if isinstance(node.expression, exp.Expression) else str(node.expression or "")
        if keyword == "SHOW" or keyword.startswith("DESCRIBE") or keyword == "DESC":
            return keyword.split()[0] if keyword != "DESC" else "DESCRIBE"
        if keyword == "EXPLAIN":
            # EXPLAIN ANALYZE runs its statement: the explained statement must pass on its own.
            inner = _EXPLAIN_OPTIONS.sub("", rest, count=1)
            try:
                inner_kind = check(inner, max_chars).statement_type
            except NotReadOnly as exc:
                raise NotReadOnly(f"EXPLAIN {exc.statement_type}") from exc
            except Unparsable:
                raise
            except ValueError as exc:
                raise NotReadOnly("EXPLAIN", "EXPLAIN needs a statement to explain") from exc
            return f"EXPLAIN {inner_kind}" if inner_kind != "EXPLAIN" else "EXPLAIN"
        raise NotReadOnly(kind)
    if isinstance(node, exp.Describe) or type(node).__name__ == "Show":
        return "DESCRIBE" if isinstance(node, exp.Describe) else "SHOW"
    if isinstance(node, (exp.Query, exp.Subquery, exp.Values)):
        if kind == "SELECT INTO":
            raise NotReadOnly(kind)
        for inner in node.find_all(*_WRITES):
            raise NotReadOnly(statement_type(inner))
        return kind
    raise NotReadOnly(kind)
