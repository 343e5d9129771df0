"""The same passage in two documents (a file copied to another folder) gives one answer that
cites both, and only the copies the asker may read."""

from __future__ import annotations

from pathlib import Path

from identity import AccessRules, Caller, Role, ScopeCache
from indexer.run import index_folder
from pipelines.query import QueryService
from pipelines.settings import Settings

POLICY = (
    "# Parental leave\n\nParental leave is sixteen weeks at full pay. Requests go to the "
    "people team two months before the leave starts, with the expected date of birth."
)
QUESTION = "How long is parental leave?"


def test_one_answer_cites_every_copy_the_asker_may_read(tmp_path: Path, tiny_reader: Path) -> None:
    collection = tmp_path / "collection"
    for folder in ("hr", "handbook"):
        (collection / folder).mkdir(parents=True)
        (collection / folder / "parental-leave.md").write_text(POLICY, "utf-8")
    settings = Settings(home=tmp_path / "home", reader_model=str(tiny_reader))
    assert index_folder([collection], settings, progress=False).added == 2
    AccessRules.of(settings).allow("hr/**", "hr")
    service = QueryService(settings)
    documents = [(r.doc_id, r.source) for r in service.store.sources()]
    rules = ScopeCache(AccessRules.of(settings))

    def scope(groups: frozenset[str]) -> frozenset[str] | None:
        return rules.scope(Caller(name="someone", role=Role.VIEWER, groups=groups), "v", documents)

    seen_by_hr = service.answer(QUESTION, 4, 3, scope=scope(frozenset({"hr"}))).answers
    spans = [a for a in seen_by_hr if a.answer]
    assert spans
    for answer in spans:  # the same span of both copies is one answer citing both
        cited = {answer.document} | {copy["document"] for copy in answer.also_in}
        assert cited == {"collection/hr/parental-leave.md", "collection/handbook/parental-leave.md"}
        assert [a.answer for a in seen_by_hr].count(answer.answer) == 1

    seen_by_others = service.answer(QUESTION, 4, 3, scope=scope(frozenset())).answers
    assert any(a.answer for a in seen_by_others)
    for answer in seen_by_others:  # never a word of the copy under hr/
        assert answer.also_in == []
        assert answer.document in (None, "collection/handbook/parental-leave.md")
