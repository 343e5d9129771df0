"""Document permissions: which groups may see which documents.

An access rule gives the documents whose displayed path (the path citations show, e.g.
``documents/hr/leave-policy.pdf``) matches a glob to some groups: ``docqa access allow
'hr/**' --groups hr``. A document that no rule matches is visible to everyone; one that rules
match is visible to the members of any of their groups, and to admins. Rules live in
``<home>/access_rules.json`` (0600, written atomically under a lock) and apply to the next
question: nothing is re-embedded.

Globs (``wcmatch``, ``**`` spans folders, ``*`` and ``?`` stay inside one): a pattern that starts
with ``/`` is anchored at the start of the displayed path; any other pattern matches at any folder
depth, as in ``.gitignore`` (``hr/**`` covers ``documents/hr/a.pdf`` and ``hr/a.pdf``). Matching
more than meant only restricts more.

Enforcement is the scope (:func:`visible_doc_ids`): the set of documents a caller may see, passed
into every search (FAISS ID selector, BM25 mask, SQL), every listing and every count, never used
to drop hits after a search.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock
from wcmatch import glob as wcglob

from identity.roles import Caller, parse_groups
from pipelines.settings import Settings
from pipelines.store import PassageStore
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

RULES_FILE = "access_rules.json"
_FLAGS = wcglob.GLOBSTAR | wcglob.DOTGLOB
MAX_PATTERN_CHARS = 512


class AccessRuleError(ValueError):
    """A rule cannot be added or removed, or the rules file cannot be read; says why."""


@dataclass(frozen=True)
class AccessRule:
    pattern: str
    groups: tuple[str, ...]

    def matches(self, source: str) -> bool:
        return source_matches(self.pattern, source)


def source_matches(pattern: str, source: str) -> bool:
    """Whether a displayed document path matches a rule's glob (see the module docstring)."""
    path = source.lstrip("/")
    if pattern.startswith("/"):
        return wcglob.globmatch(path, pattern[1:], flags=_FLAGS)
    return wcglob.globmatch(path, pattern, flags=_FLAGS) or wcglob.globmatch(
        path, "**/" + pattern, flags=_FLAGS
    )


def _check_pattern(pattern: str) -> str:
    pattern = pattern.strip()
    if not pattern or len(pattern) > MAX_PATTERN_CHARS or "\x00" in pattern:
        raise AccessRuleError(f"a rule's glob is 1-{MAX_PATTERN_CHARS} characters: {pattern!r}")
    if any(part == ".." for part in pattern.split("/")):
        raise AccessRuleError(f"{pattern!r}: '..' never appears in a displayed path")
    return pattern


class AccessRules:
    """The access rules of one data home."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path.with_name(self.path.name + ".lock")), timeout=10)
        self._cache: tuple[tuple[int, int], list[AccessRule]] | None = None
        self._cache_lock = threading.Lock()

    @classmethod
    def of(cls, settings: Settings) -> AccessRules:
        return cls(settings.home / RULES_FILE)

    def stamp(self) -> tuple[int, int]:
        """Changes whenever the rules do (modification time and size); (0, 0) without rules."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def _read(self) -> list[AccessRule]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AccessRuleError(f"{self.path}: cannot read ({exc.strerror})") from exc
        try:
            return [
                AccessRule(str(r["pattern"]), tuple(r["groups"])) for r in json.loads(raw)["rules"]
            ]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            # Unreadable rules must not mean "everything visible": the caller gets an error.
            raise AccessRuleError(f"{self.path}: not a DocQA access rules file ({exc})") from exc

    def list(self) -> list[AccessRule]:
        stamp = self.stamp()
        with self._cache_lock:
            if self._cache is None or self._cache[0] != stamp:
                self._cache = (stamp, self._read())
            return list(self._cache[1])

    def _write(self, rules: list[AccessRule]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"rules": [asdict(r) | {"groups": list(r.groups)} for r in rules]}
        write_atomic(self.path, json.dumps(data, indent=2) + "\n")
        os.chmod(self.path, 0o600)

    def allow(self, pattern: str, groups: Iterable[str] | str) -> AccessRule:
        """Give the documents matching ``pattern`` to ``groups`` (replacing that glob's rule)."""
        pattern = _check_pattern(pattern)
        chosen = parse_groups(groups) if isinstance(groups, str) else frozenset(groups)
        if not chosen:
            raise AccessRuleError(f"{pattern!r}: name at least one group (--groups G1,G2)")
        rule = AccessRule(pattern, tuple(sorted(chosen)))
        with self._lock:
            rules = [r for r in self._read() if r.pattern != pattern] + [rule]
            self._write(rules)
        logger.info("access rule %s -> %s", pattern, ",".join(rule.groups))
        return rule

    def remove(self, pattern: str) -> bool:
        with self._lock:
            rules = self._read()
            kept = [r for r in rules if r.pattern != pattern.strip()]
            if len(kept) == len(rules):
                return False
            self._write(kept)
        return True


def document_groups(source: str, rules: Iterable[AccessRule]) -> frozenset[str] | None:
    """The groups that may see a document, None when no rule matches it (everyone may)."""
    matched = [r for r in rules if r.matches(source)]
    if not matched:
        return None
    return frozenset(g for r in matched for g in r.groups)


def may_see(caller: Caller, source: str, rules: Iterable[AccessRule]) -> bool:
    if caller.sees_everything:
        return True
    groups = document_groups(source, rules)
    return groups is None or bool(groups & caller.groups)


def visible_doc_ids(
    caller: Caller, documents: Iterable[tuple[str, str]], rules: Iterable[AccessRule]
) -> frozenset[str] | None:
    """The ids of the documents (``(doc_id, displayed path)``) the caller may see; None when
    that is every document (no narrowing needed)."""
    rules = list(rules)
    if caller.sees_everything or not rules:
        return None
    documents = list(documents)
    visible = frozenset(d for d, source in documents if may_see(caller, source, rules))
    return None if len(visible) == len(documents) else visible


class ScopeCache:
    """:func:`visible_doc_ids` for a store, computed once per (index version, rules, groups):
    matching globs against every document is cheap once, not on every question."""

    def __init__(self, rules: AccessRules, max_entries: int = 64) -> None:
        self.rules = rules
        self._cache: dict[tuple[object, ...], frozenset[str] | None] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def scope(
        self,
        caller: Caller,
        version: str | None,
        documents: Iterable[tuple[str, str]] | Callable[[], Iterable[tuple[str, str]]],
    ) -> frozenset[str] | None:
        """``documents``: ``(doc_id, displayed path)`` pairs, or a function listing them: it is
        only called on a cache miss with rules to apply (listing 10,000 documents takes ~100 ms,
        too long to do on every question)."""
        if caller.sees_everything:
            return None
        key = (version, self.rules.stamp(), caller.groups)
        with self._lock:
            if version is not None and key in self._cache:
                return self._cache[key]
        rules = self.rules.list()
        listed: Iterable[tuple[str, str]] = ()  # without rules everything is visible
        if rules:
            listed = documents() if callable(documents) else documents
        found = visible_doc_ids(caller, listed, rules)
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.clear()
            if version is not None:
                self._cache[key] = found
        return found

    def for_store(self, caller: Caller, store: PassageStore) -> frozenset[str] | None:
        """The caller's scope over a loaded store (cached per saved index version)."""
        if caller.sees_everything:
            return None
        folder = store.version_folder
        return self.scope(
            caller,
            str(folder) if folder is not None else None,
            lambda: [(r.doc_id, r.source) for r in store.sources()],
        )
