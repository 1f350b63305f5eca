"""Which waiting job starts next: round-robin between users.

Every job gets a *round*: a user's first waiting job is in the current round, their
second in the next one, and so on. Jobs start in (round, arrival) order. A user who
sends ten songs at once therefore gets one of them started per round, while someone who
arrives later with one song is placed in the current round, ahead of the first user's
second song: nobody waits behind another user's whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(order=True)
class _Ticket(Generic[T]):
    round: int
    sequence: int
    user_ref: str = field(compare=False)
    item: T = field(compare=False)


class FairQueue(Generic[T]):
    """Waiting items in the order they should start (small: a few hundred at most)."""

    def __init__(self) -> None:
        self._tickets: list[_Ticket[T]] = []
        self._next_round: dict[str, int] = {}
        self._current_round = 0
        self._sequence = count()

    def __len__(self) -> int:
        return len(self._tickets)

    def push(self, user_ref: str, item: T) -> None:
        round_ = max(self._next_round.get(user_ref, 0), self._current_round)
        self._next_round[user_ref] = round_ + 1
        ticket = _Ticket(round_, next(self._sequence), user_ref, item)
        index = len(self._tickets)
        while index > 0 and ticket < self._tickets[index - 1]:
            index -= 1
        self._tickets.insert(index, ticket)

    def pop(self) -> T:
        """The next item to start (its user's later items move one round back).

        Raises:
            IndexError: the queue is empty.
        """
        ticket = self._tickets.pop(0)
        self._current_round = ticket.round
        self._forget_idle_users()
        return ticket.item

    def remove(self, item: T) -> bool:
        """Take ``item`` out (a cancelled job); False when it was not waiting."""
        for index, ticket in enumerate(self._tickets):
            if ticket.item is item:
                del self._tickets[index]
                self._forget_idle_users()
                return True
        return False

    def items(self) -> list[T]:
        """Waiting items, next to start first (position = index + 1)."""
        return [ticket.item for ticket in self._tickets]

    def _forget_idle_users(self) -> None:
        # A user whose next round has come is no different from a newcomer; dropping them
        # keeps the map to users ahead of the current round (it would grow with every user).
        for user_ref, next_round in list(self._next_round.items()):
            if next_round <= self._current_round:
                del self._next_round[user_ref]
