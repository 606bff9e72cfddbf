"""The account hierarchy: a parent and its sub-accounts are one customer's accounts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AccountHierarchy:
    """Known accounts, each with its parent (None for a top-level account)."""

    parents: Mapping[str, str | None]

    def knows(self, account_sid: str) -> bool:
        return account_sid in self.parents

    def root_of(self, account_sid: str) -> str:
        seen = {account_sid}
        while (parent := self.parents.get(account_sid)) is not None and parent not in seen:
            seen.add(parent)
            account_sid = parent
        return account_sid

    def same_customer(self, one: str, other: str) -> bool:
        return self.knows(one) and self.knows(other) and self.root_of(one) == self.root_of(other)

    def may_act_for(self, caller: str, target: str) -> bool:
        """An account acts for itself and for its sub-accounts at any depth, never for its parent."""
        if not self.knows(target):
            return False
        seen: set[str] = set()
        current: str | None = target
        while current is not None and current not in seen:
            if current == caller:
                return True
            seen.add(current)
            current = self.parents.get(current)
        return False
