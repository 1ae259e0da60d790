"""The README as a document: its size, its links, and its summary table against the one make_figures.py
writes."""
import re
from pathlib import Path

from conftest import ROOT

README = (Path(ROOT) / "README.md").read_text()


def test_readme_stays_a_five_minute_read():
    assert len(README) <= 12_000, (f"README.md has {len(README):,} characters; the limit is 12,000 "
                                   "(move details to docs/)")


def test_every_relative_link_and_figure_in_the_readme_exists():
    targets = re.findall(r"\]\(([^)#\s]+)\)", README)
    assert targets
    missing = [t for t in targets if not t.startswith("http") and not (Path(ROOT) / t).exists()]
    assert not missing, f"README.md points to missing files: {missing}"


def test_readme_summary_is_the_generated_report_table():
    """figures/report_vs_ours.md (make_figures.py, from the metrics files) row for row in the README, so that
    the numbers a reader sees beside the report's are the files' numbers."""
    rows = [r for r in (Path(ROOT) / "figures" / "report_vs_ours.md").read_text().splitlines()
            if r.startswith("| Q")]
    assert len(rows) >= 10
    stale = [r[:80] for r in rows if r not in README]
    assert not stale, ("README.md's table differs from figures/report_vs_ours.md "
                       f"(run make_figures.py, copy it): {stale}")


def test_make_figures_writes_the_summary_table_into_the_readme(tmp_path):
    """make_figures.py puts figures/report_vs_ours.md into the README beside figures/, in place of the old
    table, leaving the text around it as it was; a README without the table is left alone."""
    from common.reporting.results import sync_readme_table
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\n| question | quantity |\n|---|---|\n| Q1 | old |\n\nafter\n")
    table = "| question | quantity |\n|---|---|\n| Q1 | new |\n| Q2 | added |\n"
    assert sync_readme_table(readme, table)
    assert readme.read_text() == "# T\n\n" + table + "\nafter\n"
    assert not sync_readme_table(readme, table)                     # already current: not rewritten
    readme.write_text("no table\n")
    assert not sync_readme_table(readme, table) and readme.read_text() == "no table\n"
    assert not sync_readme_table(tmp_path / "absent.md", table)


def test_results_state_how_many_intervals_exclude_zero_against_chance():
    """RESULTS.md's comparisons open with the multiplicity line: counts of significant t rows, overall and in
    the Q2.2 default-setting family, beside what chance alone gives; rows without an interval are not
    counted."""
    from common.reporting.results import multiplicity
    q22 = "Q2.2 (homework-default BiLSTM): a vs b"
    comps = ([{"comparison": q22, "significant": True}] * 3 + [{"comparison": q22, "significant": False}] * 37
             + [{"comparison": "Q1.1: x", "significant": True}] * 2
             + [{"comparison": q22, "significant": None}]
             + [{"comparison": "Q2.3 (at most 60 epochs): x", "significant": True}])
    line = multiplicity(comps)
    assert "5 of the 42 intervals below exclude 0" in line and "about 2;" in line
    assert "of the 40 Q2.2 rows at the homework-default setting, 3 (chance: about 2)" in line
