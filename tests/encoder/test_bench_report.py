"""The encoder benchmark's table: each service row is read against the in-process rates measured around it."""

from __future__ import annotations

from recsys.encoder.bench.report import Reference, Report, Row


def test_a_row_measured_between_two_references_is_read_against_their_average() -> None:
    around = Reference.around(Reference(400.0, 100.0), Reference(200.0, 50.0))

    assert around == Reference(300.0, 75.0)


def test_rows_with_a_reference_use_it_and_rows_without_use_the_reports_rates() -> None:
    report = Report("t", baseline_per_second=400.0, naive_per_second=100.0)
    report.rows.append(Row("baseline", 400.0))
    report.rows.append(Row("service", 270.0, reference=Reference(300.0, 75.0)))

    lines = report.render().splitlines()
    baseline_line = next(line for line in lines if line.startswith("baseline"))
    service_line = next(line for line in lines if line.startswith("service"))

    assert baseline_line.split()[1:4] == ["400.0", "1.00", "4.00"]
    assert service_line.split()[1:4] == ["270.0", "0.90", "3.60"]
