"""The encoder benchmark's table: each service row is read against the in-process rates measured around it."""

from __future__ import annotations

from recsys.encoder.text.tokenization import TokenizedText
from recsys.tools.encoder_bench.report import Reference, Report, Row, Target
from recsys.tools.encoder_bench.scenarios import passes_in_process


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


def test_a_target_prints_its_context_after_the_verdict() -> None:
    report = Report("t", baseline_per_second=400.0, naive_per_second=100.0)
    report.targets.append(Target("c64 / naive", 3.0, 4.0, context="the ceiling row: 3.40x naive"))
    report.targets.append(Target("ingestion / baseline", 0.8, 0.7))

    lines = report.render().splitlines()

    assert "  NOT MET  c64 / naive: 3.00 (needs >= 4.00; the ceiling row: 3.40x naive)" in lines
    assert "  met      ingestion / baseline: 0.80 (needs >= 0.70)" in lines


def test_the_ceiling_runs_every_text_once_in_passes_sorted_by_length() -> None:
    tokenized = [TokenizedText(f"t{n}", tokens) for n, tokens in enumerate([9, 3, 7, 1, 5])]
    passes: list[list[int]] = []

    rate = passes_in_process(lambda batch: passes.append([text.tokens for text in batch]), tokenized, 2)

    assert passes == [[1, 3], [5, 7], [9]]
    assert rate.count == 5
