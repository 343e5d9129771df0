"""Document permissions inside the search: a caller's scope narrows FAISS, BM25 and listings."""

from __future__ import annotations

import pytest

from identity import AccessRules, Caller, Role, ScopeCache
from identity.access import AccessRule, AccessRuleError, source_matches, visible_doc_ids
from pipelines.query import get_service
from pipelines.settings import Settings
from tests.conftest import leaks_hr


def _caller(groups: str, role: Role = Role.VIEWER) -> Caller:
    return Caller(name=f"someone-{groups}", role=role, groups=frozenset(groups.split(",")) - {""})


def _scope(settings: Settings, caller: Caller) -> frozenset[str] | None:
    store = get_service(settings).store
    documents = [(r.doc_id, r.source) for r in store.sources()]
    return ScopeCache(AccessRules.of(settings)).scope(caller, "v", documents)


@pytest.mark.parametrize(
    ("pattern", "source", "matches"),
    [
        ("hr/**", "collection/hr/salaries.md", True),
        ("hr/**", "hr/a/b.pdf", True),
        ("hr/**", "collection/eng/hr.md", False),
        ("/hr/**", "collection/hr/salaries.md", False),
        ("/collection/hr/*", "collection/hr/salaries.md", True),
        ("*.pdf", "a/b/c.pdf", True),
        ("hr/*.md", "collection/hr/sub/x.md", False),
    ],
)
def test_globs_match_displayed_paths(pattern: str, source: str, matches: bool) -> None:
    assert source_matches(pattern, source) is matches


def test_rules_file_is_private_and_refuses_bad_globs(tmp_path) -> None:
    rules = AccessRules(tmp_path / "access_rules.json")
    rules.allow("hr/**", "hr,people")
    assert (tmp_path / "access_rules.json").stat().st_mode & 0o777 == 0o600
    assert [(r.pattern, r.groups) for r in rules.list()] == [("hr/**", ("hr", "people"))]
    with pytest.raises(AccessRuleError, match=r"'\.\.'"):
        rules.allow("../etc/**", "hr")
    with pytest.raises(AccessRuleError, match="at least one group"):
        rules.allow("eng/**", "")
    assert rules.remove("hr/**") and rules.list() == []


def test_unreadable_rules_never_mean_everything_visible(tmp_path) -> None:
    path = tmp_path / "access_rules.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AccessRuleError, match="not a DocQA access rules file"):
        AccessRules(path).list()


def test_unmatched_documents_are_visible_to_all_and_admins_see_everything() -> None:
    docs = [("1", "c/hr/a.md"), ("2", "c/eng/b.md")]
    rules = [AccessRule("hr/**", ("hr",))]
    assert visible_doc_ids(_caller("eng"), docs, rules) == frozenset({"2"})
    assert visible_doc_ids(_caller("hr"), docs, rules) is None
    assert visible_doc_ids(_caller("eng", Role.ADMIN), docs, rules) is None
    assert visible_doc_ids(_caller(""), docs, []) is None


@pytest.mark.parametrize("retrieval", ["dense", "bm25", "hybrid"])
def test_an_eng_viewer_never_gets_an_hr_passage(access_home: Settings, retrieval: str) -> None:
    settings = access_home.with_(retrieval=retrieval)
    eng = _scope(settings, _caller("eng"))
    assert eng is not None and len(eng) == 2
    service = get_service(settings)
    for question in ("What is the salary band for a senior engineer?", "Who approves salary"):
        passages = service.retrieve(question, top_k=10, scope=eng)
        # Dense retrieval fills top_k from what the caller may see (BM25 needs a shared term).
        assert passages or retrieval == "bm25"
        assert all(p.meta["doc_id"] in eng for p in passages)
        assert not leaks_hr(" ".join(p.content + p.meta["source"] for p in passages))
        outcome = service.answer(question, 10, 3, scope=eng)
        for answer in outcome.answers:
            assert answer.doc_id is None or answer.doc_id in eng
            assert not leaks_hr(f"{answer.answer} {answer.context} {answer.document}")
    # The hr viewer gets the salary passage first.
    hr = _scope(settings, _caller("hr"))
    top = service.retrieve("What is the salary band for a senior engineer?", 10, scope=hr)
    assert "salary band" in top[0].content


def test_a_scope_and_a_filter_combine_inside_the_search(access_home: Settings) -> None:
    service = get_service(access_home.with_(retrieval="dense"))
    store = service.store
    eng = _scope(access_home, _caller("eng"))
    hr_ids = [r.doc_id for r in store.sources() if "/hr/" in r.source]
    only_hr = {"field": "meta.doc_id", "operator": "in", "value": hr_ids}
    # A client filter asking for hr documents only narrows further: nothing, never hr.
    assert service.retrieve("salary", top_k=10, filters=only_hr, scope=eng) == []
    assert len(store.sources(eng)) == 2
