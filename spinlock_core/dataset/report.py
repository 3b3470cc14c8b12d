"""The outcome of a validation: every error, warning and passed check, one line each."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ValidationReport", "Collector", "MAX_LISTED"]

#: Offences listed per check before the rest are counted only.
MAX_LISTED = 8


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_structure`: ``ok`` iff there are no errors."""

    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def merge(self, other: ValidationReport, prefix: str) -> None:
        self.errors += [f"{prefix}: {e}" for e in other.errors]
        self.warnings += [f"{prefix}: {w}" for w in other.warnings]
        self.checks += [f"{prefix}: {c}" for c in other.checks]

    def format(self) -> str:
        lines = [
            f"{'OK' if self.ok else 'INVALID'}: {self.path} ({len(self.errors)} errors, {len(self.warnings)} warnings, {len(self.checks)} checks passed)"
        ]
        lines += [f"  ERROR   {e}" for e in self.errors]
        lines += [f"  WARNING {w}" for w in self.warnings]
        lines += [f"  ok      {c}" for c in self.checks]
        return "\n".join(lines)

    __str__ = format


class Collector:
    """Caps the number of listed offences per check."""

    def __init__(self, report: ValidationReport, what: str) -> None:
        self.report, self.what, self.count = report, what, 0

    def add(self, message: str) -> None:
        self.count += 1
        if self.count <= MAX_LISTED:
            self.report.errors.append(message)

    def done(self, passed: str) -> None:
        if self.count > MAX_LISTED:
            self.report.errors.append(f"... {self.count - MAX_LISTED} more {self.what} errors not listed")
        elif self.count == 0:
            self.report.checks.append(passed)
