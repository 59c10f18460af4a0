"""What a sweep did: cells that ran, were skipped (finished already, or taken by another sweep)
and failed, with the reasons."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SweepReport:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{len(self.ran)} ran, {len(self.skipped)} skipped (already finished), "
            f"{len(self.failed)} failed"
        ]
        lines += [f"  FAILED {label}: {reason}" for label, reason in self.failed]
        return "\n".join(lines)
