"""The department's quarterly report, written from the published warehouse.

``write_report(warehouse, quarter, out_root)`` writes ``out_root/<YYYY>-Q<n>/report.html`` (self-contained,
phone-readable, printable) with its figures as PNG and its tables as CSV, every number small-cell suppressed.
"""

from pipeline.report.build import write_report

__all__ = ["write_report"]
