"""The evaluation's data in the project's own event format: a catalog from item events, interactions as columns.

The files are what `recsys publish items|interactions FILE` takes (one stream payload per line, an
optional "event" key), parsed by the consumers' own parsers, so a file the services accept is a file
the evaluation reads. MovieLens is one adapter onto this format (movielens.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from recsys.cli.publish import line_to_fields
from recsys.encoder.interactions.rules import EventWeights
from recsys.shared.events import (
    Interaction,
    InteractionType,
    ItemDeleted,
    ItemEvent,
    ItemUpserted,
    MalformedEvent,
    parse_interaction,
    parse_item_event,
)

# Type codes of the `type` column: INTERACTION_TYPES[code].
INTERACTION_TYPES: tuple[InteractionType, ...] = tuple(InteractionType)
TYPE_CODE: dict[InteractionType, int] = {kind: code for code, kind in enumerate(INTERACTION_TYPES)}
NO_SESSION = -1


class DatasetError(ValueError):
    """A line the services would refuse, named by file and line number."""


@dataclass(frozen=True)
class Interactions:
    """Interactions as parallel columns; user, item, session and event are row numbers into the id lists.

    `value` is nan where the event carries none; `weight` is the service's signed weight of the
    event (EventWeights); `session` is NO_SESSION where the event names none.
    """

    user: np.ndarray
    item: np.ndarray
    type: np.ndarray
    value: np.ndarray
    ts: np.ndarray
    weight: np.ndarray
    session: np.ndarray
    event: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    session_ids: list[str]
    event_ids: list[str]

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, rows: np.ndarray) -> Interactions:
        """These rows only; the id lists (and so every row number) stay the same."""
        return replace(
            self,
            user=self.user[rows],
            item=self.item[rows],
            type=self.type[rows],
            value=self.value[rows],
            ts=self.ts[rows],
            weight=self.weight[rows],
            session=self.session[rows],
            event=self.event[rows],
        )

    def is_type(self, kinds: Iterable[InteractionType]) -> np.ndarray:
        """Rows whose type is one of `kinds`."""
        return np.isin(self.type, [TYPE_CODE[kind] for kind in kinds])

    def interaction(self, row: int) -> Interaction:
        """The event of one row, as the consumer hands it to ingestion."""
        value = float(self.value[row])
        session = int(self.session[row])
        return Interaction.model_construct(
            event_id=self.event_ids[int(self.event[row])],
            user_id=self.user_ids[int(self.user[row])],
            item_id=self.item_ids[int(self.item[row])],
            type=INTERACTION_TYPES[int(self.type[row])],
            value=None if np.isnan(value) else value,
            session_id=None if session == NO_SESSION else self.session_ids[session],
            ts=float(self.ts[row]),
        )

    def reweighted(self, weights: EventWeights) -> Interactions:
        """The same interactions with `weight` recomputed under other event weights."""
        column = np.fromiter((weights.weight(self.interaction(row)) for row in range(len(self))), np.float64, len(self))
        return replace(self, weight=column)


@dataclass(frozen=True)
class EventDataset:
    """Interactions and the catalog: texts[row] is item row's content text, None for an item not in the catalog
    (never upserted, or deleted): its interactions still count, but it has no content vector and is never
    recommended."""

    interactions: Interactions
    texts: list[str | None]

    @property
    def item_ids(self) -> list[str]:
        return self.interactions.item_ids

    @property
    def in_catalog(self) -> np.ndarray:
        return np.fromiter((text is not None for text in self.texts), bool, len(self.texts))


class DatasetBuilder:
    """Folds parsed events into an EventDataset: item events in order, then interactions in order."""

    def __init__(self, weights: EventWeights) -> None:
        self._weights = weights
        self._items: dict[str, int] = {}
        self._catalog: dict[int, ItemEvent] = {}
        self._users: dict[str, int] = {}
        self._sessions: dict[str, int] = {}
        self._events: dict[str, int] = {}
        self._ints = {name: array("q") for name in ("user", "item", "type", "session", "event")}
        self._floats = {name: array("d") for name in ("value", "ts", "weight")}
        self._latest_ts = 0.0
        self.replayed = 0

    def item_event(self, event: ItemEvent) -> None:
        """Applies the catalog's version rules: a higher version wins (equal: the later ts); a deletion removes an
        item up to its version, and only a higher version brings the item back."""
        row = self._items.setdefault(event.item_id, len(self._items))
        stored = self._catalog.get(row)
        ts = event.ts or 0.0
        if stored is not None:
            stored_ts = stored.ts or 0.0
            if isinstance(event, ItemDeleted):
                if stored.version > event.version:
                    return
            elif isinstance(stored, ItemDeleted):
                if event.version <= stored.version:
                    return
            elif (event.version, ts) <= (stored.version, stored_ts):
                return
        self._catalog[row] = event

    def interaction(self, event: Interaction) -> None:
        """Adds one interaction; an event id seen before is a replay and counted once, as the service does.

        Raises MalformedEvent for a rating or strength the service's weights refuse. A missing ts (the
        stream would use the time it was added) is the latest ts before it in the input (`entry_id`).
        """
        if event.event_id in self._events:
            self.replayed += 1
            return
        weight = self._weights.weight(event)
        ts = self._latest_ts if event.ts is None else float(event.ts)
        self._latest_ts = max(self._latest_ts, ts)
        self._events[event.event_id] = len(self._events)
        self._ints["user"].append(self._users.setdefault(event.user_id, len(self._users)))
        self._ints["item"].append(self._items.setdefault(event.item_id, len(self._items)))
        self._ints["type"].append(TYPE_CODE[event.type])
        session = NO_SESSION
        if event.session_id is not None:
            session = self._sessions.setdefault(event.session_id, len(self._sessions))
        self._ints["session"].append(session)
        self._ints["event"].append(self._events[event.event_id])
        self._floats["value"].append(np.nan if event.value is None else float(event.value))
        self._floats["ts"].append(ts)
        self._floats["weight"].append(weight)

    def entry_id(self) -> str:
        """A stream entry id at the latest ts so far: what a parser gives an interaction without ts."""
        return f"{int(self._latest_ts * 1000)}-0"

    def build(self) -> EventDataset:
        ints = {name: np.frombuffer(column, dtype=np.int64).copy() for name, column in self._ints.items()}
        floats = {name: np.frombuffer(column, dtype=np.float64).copy() for name, column in self._floats.items()}
        interactions = Interactions(
            user=ints["user"],
            item=ints["item"],
            type=ints["type"].astype(np.int8),
            value=floats["value"],
            ts=floats["ts"],
            weight=floats["weight"],
            session=ints["session"],
            event=ints["event"],
            user_ids=list(self._users),
            item_ids=list(self._items),
            session_ids=list(self._sessions),
            event_ids=list(self._events),
        )
        texts: list[str | None] = [None] * len(self._items)
        for row, event in self._catalog.items():
            if isinstance(event, ItemUpserted):
                texts[row] = event.content_text()
        return EventDataset(interactions, texts)


def load_events(items: Path, interactions: Path, weights: EventWeights) -> EventDataset:
    """Reads an items file and an interactions file as `recsys publish` takes them.

    Raises FileNotFoundError for a missing file, DatasetError naming the file and line of the first
    line the services would refuse (not JSON, an invalid payload, a ts too far ahead, a rating or
    strength out of range).
    """
    for path in (items, interactions):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
    builder = DatasetBuilder(weights)
    for path, number, line in _lines(items):
        try:
            builder.item_event(parse_item_event(line_to_fields("items", line)))
        except MalformedEvent as exc:
            raise DatasetError(f"{path}:{number}: {exc}") from exc
    for path, number, line in _lines(interactions):
        try:
            fields = line_to_fields("interactions", line)
            builder.interaction(parse_interaction(fields, builder.entry_id()))
        except MalformedEvent as exc:
            raise DatasetError(f"{path}:{number}: {exc}") from exc
    return builder.build()


def _lines(path: Path) -> Iterable[tuple[Path, int, str]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield path, number, line
