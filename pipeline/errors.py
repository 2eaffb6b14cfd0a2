"""Errors a coordinator reads: one clear sentence, never a cell value of a rejected export."""

from __future__ import annotations


class PipelineError(Exception):
    """A fault the user can act on; the CLI prints its message without a traceback."""


class StoreBusy(PipelineError):
    """Another process writes the staging store: DuckDB lets no other open it meanwhile."""


class NothingToReport(PipelineError):
    """A quarter with no data loaded by its end: nothing is wrong, there is only nothing to report."""


class DropRejected(PipelineError):
    """The whole drop is refused: nothing of it is loaded."""

    def __init__(self, drop_id: str, reason: str, fix: str = "") -> None:
        self.drop_id = drop_id
        self.reason = reason
        self.fix = fix
        self.parts: list[DropRejected] = [self]  # the single faults a combined refusal tells
        message = f"Drop {drop_id} rejected: {reason}"
        if fix:
            message += f" To fix: {fix}"
        super().__init__(message)

    @classmethod
    def all_of(cls, drop_id: str, faults: list[DropRejected]) -> DropRejected:
        """One refusal telling every fault found, so a coordinator fixes them in one go, not one per send."""
        if len(faults) == 1:
            return faults[0]
        parts = [part for fault in faults for part in fault.parts]
        reasons = " ".join(f"({i}) {part.reason}" for i, part in enumerate(parts, 1))
        fixes = list(dict.fromkeys(part.fix for part in parts if part.fix))
        combined = cls(drop_id, f"{len(parts)} faults: {reasons}", " ".join(fixes))
        combined.parts = parts
        return combined


class DropHeld(PipelineError):
    """A full snapshot that would retire too much, held back until confirmed."""

    def __init__(self, drop_id: str, reason: str) -> None:
        self.drop_id = drop_id
        self.reason = reason
        super().__init__(f"Drop {drop_id} held: {reason}")


class NetworkInputError(PipelineError):
    """What a site sends, or what the coordinator is asked to pool, breaks a rule of the network's
    statistics (a missing column, a non-positive variance, two sites' columns that differ)."""


def row_list(rows: list[int], limit: int = 10) -> str:
    """'rows 2, 5, 9' or 'rows 2, 5, ... (40 rows)': row numbers are safe to print, values are not."""
    shown = ", ".join(str(r) for r in rows[:limit])
    if len(rows) > limit:
        shown += f", ... ({len(rows)} rows)"
    return ("row " if len(rows) == 1 else "rows ") + shown
