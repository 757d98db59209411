"""The one percentile definition every benchmark reports (nearest rank), so that a "p95" means the
same thing in each of them."""

from __future__ import annotations

from collections.abc import Iterable


def one_decimal(value: float | None) -> str:
    """A figure as the reports print it: one decimal, `-` for none."""
    return "-" if value is None else f"{value:.1f}"


def percentile(values: Iterable[float], q: float) -> float | None:
    """The value at fraction `q` (0..1) of the sorted values, nearest rank; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
