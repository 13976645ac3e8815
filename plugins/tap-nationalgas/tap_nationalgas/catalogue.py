"""The data items a run reads: ids, catalogue names, categories and ready sets, resolved to ids.

The catalogue (``GET /publications/catalogue``) is read once per run, and only when a name, a
category or a set is asked for. Names and categories match without regard to case or surrounding
spaces.
"""

from __future__ import annotations

import difflib
import re
import typing as t
from dataclasses import dataclass, field

from tap_nationalgas import values
from tap_nationalgas.sets import DEFAULT_SETS, SETS

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CLOSEST = 3
"""Names offered for one that the catalogue does not hold."""
SETTINGS = ("publication_ids", "publication_names", "publication_categories", "publication_sets")


class SelectionError(ValueError):
    """A name, category or set that the catalogue or the tap does not hold."""


@dataclass(frozen=True)
class Entry:
    """One data item of the catalogue."""

    publication_id: str
    name: str
    category: str
    sub_category: str

    def record(self) -> dict[str, str]:
        """The entry as a ``publication_catalogue`` record."""
        return {
            "publication_id": self.publication_id,
            "name": self.name,
            "category": self.category,
            "sub_category": self.sub_category,
        }


def entries(payload: object) -> list[Entry]:
    """Flatten the catalogue's categories, sub-categories and entries.

    Raises:
        values.BadValueError: when an entry has no ``publicationId``.
    """
    return [
        Entry(
            str(values.text(values.require(entry, "publicationId"))),
            values.text(entry.get("name")) or "",
            values.text(category.get("name")) or "",
            values.text(sub.get("name")) or "",
        )
        for category in values.require(payload, "data") or ()
        for sub in category.get("subCategory") or ()
        for entry in sub.get("catalogueEntries") or ()
    ]


def key(name: str) -> str:
    """A name as it is matched: without case, surrounding spaces or spaces around ``/``."""
    return re.sub(r"\s*/\s*", "/", name.strip()).casefold()


@dataclass(frozen=True)
class Choice:
    """What the settings ask for; ``None`` where a setting is unset."""

    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> Choice:
        """The four settings; all unset: the default sets.

        Raises:
            SelectionError: for a set the tap does not hold (before any request).
        """
        if all(config.get(name) is None for name in SETTINGS):
            return cls(sets=list(DEFAULT_SETS))
        ids, names, categories, sets = (list(config.get(name) or ()) for name in SETTINGS)
        check_sets(sets)
        return cls(ids, names, categories, sets)

    @property
    def needs_catalogue(self) -> bool:
        """True when a name, a category or a set is asked for."""
        return bool(self.names or self.categories or self.sets)


@dataclass
class Selection:
    """The ids a run reads, each once, and the names of sets that the catalogue lacks."""

    ids: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)

    def add(self, publication_ids: Iterable[str]) -> None:
        """Add ids not chosen yet, in order."""
        self.ids += [i for i in publication_ids if i not in self.ids]


def resolve(choice: Choice, catalogue: list[Entry]) -> Selection:
    """The ids of the items chosen: ids, then names, categories and sets, each id once.

    Raises:
        SelectionError: for a name or category the catalogue does not hold.
    """
    by_name: dict[str, list[str]] = {}
    for entry in catalogue:
        by_name.setdefault(key(entry.name), []).append(entry.publication_id)
    selection = Selection()
    selection.add(choice.ids)
    for name in choice.names:
        if key(name) not in by_name:
            raise SelectionError(unknown_name(name, catalogue))
        selection.add(by_name[key(name)])
    for category in choice.categories:
        selection.add(in_category(category, catalogue))
    for set_name in choice.sets:
        for item in SETS[set_name].items:
            if key(item.name) in by_name:
                selection.add(by_name[key(item.name)])
            else:
                selection.missing.setdefault(set_name, []).append(item.name)
    return selection


def check_sets(names: list[str]) -> None:
    """Fail on a set the tap does not hold, listing those it does.

    Raises:
        SelectionError: naming the set and the setting.
    """
    for name in names:
        if name not in SETS:
            raise SelectionError(
                f'`publication_sets`: there is no set "{name}"; the sets are '
                f"{', '.join(SETS)}; check the setting `publication_sets`"
            )


def unknown_name(name: str, catalogue: list[Entry]) -> str:
    """Why a name fails: it, the closest names the catalogue holds, and the setting."""
    spelled = {key(e.name): e.name for e in catalogue}
    close = difflib.get_close_matches(key(name), list(spelled), n=CLOSEST, cutoff=0.5)
    offer = (
        f"the closest it holds: {', '.join(quoted(spelled[c]) for c in close)}"
        if close
        else "no name it holds is close (the stream publication_catalogue lists them all)"
    )
    return (
        f"`publication_names`: {quoted(name)} is not in the National Gas catalogue; {offer}; "
        "check the setting `publication_names`"
    )


def in_category(category: str, catalogue: list[Entry]) -> list[str]:
    """The ids of a category, or of a ``Category/Sub-category``.

    Raises:
        SelectionError: naming the category, the categories there are, and the setting.
    """
    wanted = key(category)
    found = [
        e.publication_id
        for e in catalogue
        if wanted in (key(e.category), key(f"{e.category}/{e.sub_category}"))
    ]
    if found:
        return found
    categories = sorted({e.category for e in catalogue})
    parent = next((c for c in categories if wanted.startswith(key(c) + "/")), None)
    if parent is not None:
        subs = sorted({e.sub_category for e in catalogue if e.category == parent})
        there = f"the sub-categories of {quoted(parent)} are {', '.join(map(quoted, subs))}"
    else:
        there = f"the categories are {', '.join(map(quoted, categories))}"
    message = (
        f"`publication_categories`: {quoted(category)} is not in the National Gas catalogue; "
        f"{there}; check the setting `publication_categories`"
    )
    raise SelectionError(message)


def quoted(name: str) -> str:
    """A name in double quotes, as the messages show names with commas."""
    return f'"{name}"'
