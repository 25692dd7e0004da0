"""The benchmark's printed table: rates against the in-process baseline and naive encode, latencies, targets."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of the table: a rate (texts or items per second) or a latency pair, with a note."""

    name: str
    per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""
    # The in-process rates this row is read against, when re-measured around it (else the report's).
    reference: Reference | None = None


@dataclass(frozen=True)
class Reference:
    """Baseline and naive in-process rates, measured just before and just after a service row, averaged.

    The machine's speed drifts over a run of minutes (by 20% here): a row read against rates taken
    at its side is read against the machine it ran on.
    """

    baseline_per_second: float
    naive_per_second: float

    @staticmethod
    def around(before: Reference, after: Reference) -> Reference:
        return Reference(
            (before.baseline_per_second + after.baseline_per_second) / 2,
            (before.naive_per_second + after.naive_per_second) / 2,
        )


@dataclass
class Target:
    """A figure the issue asks for: `measured` must be at least (or, with at_most, at most) `limit`."""

    what: str
    measured: float
    limit: float
    at_most: bool = False
    context: str = ""  # a figure that helps read the verdict, printed after it

    @property
    def met(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit


@dataclass
class Report:
    title: str
    baseline_per_second: float
    naive_per_second: float
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        header = f"{'scenario':<58} {'per s':>9} {'x base':>7} {'x naive':>8} {'p50 ms':>8} {'p99 ms':>8}  note"
        lines = [self.title, "", header, "-" * len(header)]
        for row in self.rows:
            rate = base = naive = p50 = p99 = ""
            if row.per_second is not None:
                reference = row.reference or Reference(self.baseline_per_second, self.naive_per_second)
                rate = f"{row.per_second:9.1f}"
                base = f"{row.per_second / reference.baseline_per_second:7.2f}" if reference.baseline_per_second else ""
                naive = f"{row.per_second / reference.naive_per_second:8.2f}" if reference.naive_per_second else ""
            if row.p50_ms is not None:
                p50 = f"{row.p50_ms:8.1f}"
            if row.p99_ms is not None:
                p99 = f"{row.p99_ms:8.1f}"
            lines.append(f"{row.name:<58} {rate:>9} {base:>7} {naive:>8} {p50:>8} {p99:>8}  {row.note}".rstrip())
        if self.notes:
            lines += ["", *self.notes]
        if self.targets:
            lines += ["", "targets:"]
            for target in self.targets:
                verdict = "met" if target.met else "NOT MET"
                bound = "<=" if target.at_most else ">="
                context = f"; {target.context}" if target.context else ""
                lines.append(
                    f"  {verdict:8} {target.what}: {target.measured:.2f} (needs {bound} {target.limit:.2f}{context})"
                )
        return "\n".join(lines)
