"""Consistent number formatting for a projector and a terminal: 138,357,544 and 15.47 G,
bytes in MiB/GiB. Used by the pages (through ui/) and the CLI alike."""

from __future__ import annotations


def fmt_int(n: int | float | None) -> str:
    """Thousands separators: 138,357,544."""
    if n is None:
        return "n/a"
    return f"{int(n):,}"


def fmt_si(n: int | float | None, unit: str = "") -> str:
    """Decimal prefixes with two decimals: 15.47 G (used for MACs and FLOPs)."""
    if n is None:
        return "n/a"
    value = float(n)
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def fmt_bytes(n: int | float | None) -> str:
    """Binary units: 1.50 MiB."""
    if n is None:
        return "n/a"
    value = float(n)
    for prefix, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value:.0f} B"


def fmt_shape(shape: tuple[int, ...] | list[int] | None) -> str:
    if not shape:
        return "n/a"
    return " x ".join(str(s) for s in shape)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_wall(seconds: float | None) -> str:
    """A measured time: "3.2 s" under a minute (tenths matter there), else as fmt_duration."""
    if seconds is None:
        return "n/a"
    return f"{seconds:.1f} s" if seconds < 60 else fmt_duration(seconds)
