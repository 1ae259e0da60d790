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
