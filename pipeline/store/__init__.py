"""The staging store: the pipeline's own record of everything received, kept for good.

``connection`` opens the one DuckDB file and holds its writer lock; ``history`` writes a validated
drop into the history tables (every version of every record) in one transaction, so a load killed
at any point leaves the store as it was; ``ledger`` holds every query of the record of receipts:
the drops, the load ledger (one row a received file) and the load alerts.
"""
