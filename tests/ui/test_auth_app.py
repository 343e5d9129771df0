"""The page's login, roles and access rules with Streamlit's AppTest (real accounts, index, reader).

The role matrix drives each mutating button the way a user whose role was taken away while the
page was open would: the page is drawn at a role that may act, the account is demoted on disk,
then the button is pressed. The server code must refuse (nothing changes on disk, the refusal is
shown and audited): hiding the button is not the protection. The same actions succeed at their
lowest role (the admin's in ``test_app.py``, the editor's here).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from identity import AuditLog, UserStore
from pipelines.answers import AnswerResult
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.reader_registry import serving_name
from pipelines.settings import Settings
from pipelines.store import PassageStore
from reader_training import jobs
from reader_training.feedback import FeedbackStore
from reader_training.judgments import annotation_pair
from tests.conftest import leaks_hr
from tests.ui.conftest import PASSWORD
from tests.ui.test_app import (
    APP,
    LEAVE_QUESTION,
    TIMEOUT,
    app,
    ask,
    button,
    log_in,
    no_exceptions,
    texts,
)

SALARY_QUESTION = "What is the salary band for a senior engineer?"
DEPLOY_QUESTION = "Which command deploys the billing service?"


def everything(at: AppTest) -> str:
    """All a browser gets from the page's elements: their protos (labels, options, values,
    HTML, frames, tables), main area and sidebar."""
    parts: list[str] = []

    def walk(node: object) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        if getattr(node, "type", "") == "arrow_data_frame":
            parts.append(node.value.to_csv())  # type: ignore[attr-defined]
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return "\n".join(parts)


def set_role(home: Path, name: str, role: str) -> None:
    """Change an account's role on disk (as `docqa users` would: remove, create)."""
    users = UserStore.of(Settings(home=home))
    user = users.get(name)
    assert user is not None
    users.remove(name)
    users.create(name, role, ",".join(user.groups) or None, PASSWORD)


def audited(home: Path, action: str) -> list[tuple[str, str, str | None]]:
    return [
        (e.actor, e.outcome, e.target)
        for e in AuditLog.of(Settings(home=home)).events()
        if e.action == action
    ]


def save_annotation(home: Path) -> str:
    """A labeled pair about the opening hours, written as the Annotate page writes it; its id."""
    settings = Settings(home=home)
    store = PassageStore.load(settings.index_dir)
    record = next(r for r in store.sources() if r.source.endswith("opening-hours.txt"))
    text = store.source_text(record.doc_id)
    pair = annotation_pair("When does lunch end?", record, text, None, None, author="user:ada")
    assert pair.save(FeedbackStore(settings.feedback_file))
    return pair.id


# -- before and at the login ------------------------------------------------------------------


def test_nothing_of_the_page_before_a_login(home: Path) -> None:
    store = PassageStore.load(Settings(home=home).index_dir)
    handbook = next(r for r in store.sources() if r.source.endswith("handbook.pdf"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({"doc": handbook.doc_id, "start": "0", "end": "10"})
    at.run()
    no_exceptions(at)
    shown = everything(at)
    assert "Log in" in shown and "Password" in shown
    for secret in ("Employee Handbook", "handbook.pdf", "documents/", "passages", "reader"):
        assert secret not in shown, secret
    assert not at.get("iframe") and not at.sidebar.caption
    # A page's own URL shows nothing either (each page asks for its caller too).
    at.switch_page("views/documents.py").run()
    no_exceptions(at)
    assert "Employee Handbook" not in everything(at) and not at.dataframe

    # No account and no single sign-on: nobody gets in, and the page says how to fix it.
    (home / "users.json").unlink()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert "docqa users create NAME --role admin" in texts(at.info)
    assert not at.text_input


def test_local_login_wrong_password_throttle_and_logout(home: Path) -> None:
    at = log_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT), "ada", "wrong password!")
    no_exceptions(at)
    assert "Wrong name or password." in texts(at.error)
    assert at.text_input(key="login_name") is not None and not at.sidebar.caption
    log_in(at, "nobody", PASSWORD)
    assert "Wrong name or password." in texts(at.error)  # an unknown name: the same answer

    log_in(at, "ada")
    no_exceptions(at)
    assert [t.value for t in at.title] == ["Ask your documents"]
    assert "ada (admin · groups ops)" in texts(at.sidebar.caption)
    ask(at, LEAVE_QUESTION)
    assert at.session_state["recent_questions"] == [LEAVE_QUESTION]
    button(at, "Log out").click().run()
    no_exceptions(at)
    assert "Log in" in [b.label for b in at.button]
    assert "recent_questions" not in at.session_state  # the next person starts from nothing
    assert "Employee Handbook" not in everything(at)

    # Five failures in a row lock the name for a while, even with its right password next.
    fresh = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for _ in range(5):
        log_in(fresh, "vic", "not the password")
    log_in(fresh, "vic")
    assert "Too many failed logins" in texts(fresh.error)
    assert not fresh.sidebar.caption

    assert audited(home, "login") == [
        ("anonymous", "failed", "ada"),
        ("anonymous", "failed", "nobody"),
        ("user:ada", "ok", None),
        *[("anonymous", "failed", "vic")] * 6,
    ]
    assert audited(home, "logout") == [("user:ada", "ok", None)]


def test_no_auth_is_the_operator_on_loopback_only(
    access_page_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``docqa ui --no-auth`` (the app's ``--no-auth`` argument): no login; an admin when the
    server listens on loopback, an anonymous viewer of unrestricted documents elsewhere."""
    monkeypatch.setattr(sys, "argv", ["app.py", "--home", str(access_page_home), "--no-auth"])
    address = st_config.get_option("server.address")
    try:
        st_config.set_option("server.address", "0.0.0.0")
        exposed = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        no_exceptions(exposed)
        assert "anonymous (viewer)" in texts(exposed.sidebar.caption)
        assert "2 documents" in texts(exposed.sidebar.caption)  # no hr: no groups
        with pytest.raises(ValueError):
            exposed.switch_page("views/models.py")
        assert "Log out" not in [b.label for b in exposed.button]

        st_config.set_option("server.address", "127.0.0.1")
        local = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        no_exceptions(local)
        assert "operator (admin)" in texts(local.sidebar.caption)
        assert "4 documents" in texts(local.sidebar.caption)
        local.switch_page("views/models.py").run()
        assert [t.value for t in local.title] == ["Models"]
    finally:
        st_config.set_option("server.address", address)


# -- roles: what each is offered ----------------------------------------------------------------


def test_each_role_is_offered_only_its_pages_and_buttons(home: Path) -> None:
    viewer = ask(app(user="vic"), LEAVE_QUESTION)
    no_exceptions(viewer)
    assert 'class="docqa-answer"' in "\n".join(e.value for e in viewer.get("html"))
    labels = {b.label for b in viewer.button}
    assert not labels & {"Correct", "Wrong", "Save"}  # no feedback for viewers
    for page in ("views/feedback.py", "views/annotate.py", "views/models.py"):
        with pytest.raises(ValueError):  # not in the navigation at all
            viewer.switch_page(page)
    viewer.switch_page("views/documents.py").run()
    no_exceptions(viewer)
    assert viewer.dataframe and not viewer.file_uploader
    assert "Remove from the index" not in {b.label for b in viewer.button}
    assert not viewer.selectbox  # the removal's document choice
    viewer.switch_page("views/monitor.py").run()
    assert "the questions you asked" in texts(viewer.caption)

    save_annotation(home)
    editor = app(page="views/documents.py", user="ed")
    assert editor.file_uploader and not editor.selectbox
    with pytest.raises(ValueError):
        editor.switch_page("views/models.py")
    editor.switch_page("views/feedback.py").run()
    no_exceptions(editor)
    editor.switch_page("views/annotate.py").run()
    no_exceptions(editor)
    # Editors see and export pairs; editing or deleting someone's pair is for admins.
    assert [b.label for b in editor.get("download_button")] == ["Export 1 pairs (SQuAD v2.0 JSON)"]
    assert "Delete" not in {b.label for b in editor.button}
    assert "Edit" not in [e.label for e in editor.expander]


# -- roles: the server code refuses -------------------------------------------------------------


def _feedback(home: Path) -> Callable[[], object]:
    at = ask(app(user="ed"), LEAVE_QUESTION)
    return lambda: button(at, "Correct").click().run()


def _label(home: Path) -> Callable[[], object]:
    at = app(page="views/annotate.py", user="ed")
    at.text_input(key="annotate-question").input("Is there parking?")
    at.checkbox(key="annotate-span-none").check().run()
    return lambda: button(at, "Save pair").click().run()


def _upload(home: Path) -> Callable[[], object]:
    at = app(page="views/documents.py", user="ed")
    at.file_uploader[0].set_value(("desk.txt", b"Hot desks are booked.", "text/plain")).run()
    return lambda: button(at, "Add to the index").click().run()


def _delete(home: Path) -> Callable[[], object]:
    at = app(page="views/documents.py", user="ada")
    store = PassageStore.load(Settings(home=home).index_dir)
    at.selectbox(key="remove-doc-0").select(store.sources()[0].doc_id).run()
    return lambda: button(at, "Remove from the index").click().run()


def _edit_pairs(home: Path) -> Callable[[], object]:
    save_annotation(home)
    at = app(page="views/annotate.py", user="ada")
    return lambda: button(at, "Delete").click().run()


def _retrain(home: Path) -> Callable[[], object]:
    save_annotation(home)
    at = app(page="views/models.py", user="ada")
    return lambda: button(at, "Retrain on 1 pairs").click().run()


def _promote(home: Path) -> Callable[[], object]:
    at = app(page="views/models.py", user="ada")
    at.selectbox(key="models-choice").select("tiny-silent").run()
    at.checkbox(key="models-force").check().run()
    return lambda: button(at, "Serve this reader").click().run()


def _state(home: Path) -> str:
    """What the actions change on disk: pairs, indexed documents, uploads, serving, jobs."""
    settings = Settings(home=home)
    store = PassageStore.load(settings.index_dir)
    return json.dumps(
        {
            "pairs": sorted(r.id for r in FeedbackStore(settings.feedback_file).list()),
            "documents": sorted(r.source for r in store.sources()),
            "uploads": sorted(p.name for p in settings.uploads_dir.glob("*"))
            if settings.uploads_dir.exists()
            else [],
            "serving": serving_name(settings),
            "job": jobs.current_job(settings) is not None,
        }
    )


@pytest.mark.parametrize(
    ("action", "prepare", "user", "demoted_to", "needs"),
    [
        ("feedback", _feedback, "ed", "viewer", "editor"),
        ("label", _label, "ed", "viewer", "editor"),
        ("upload", _upload, "ed", "viewer", "editor"),
        ("delete_document", _delete, "ada", "editor", "admin"),
        ("edit_pairs", _edit_pairs, "ada", "editor", "admin"),
        ("retrain", _retrain, "ada", "editor", "admin"),
        ("promote", _promote, "ada", "editor", "admin"),
    ],
)
def test_every_change_is_refused_in_the_server_code_below_its_role(
    home: Path,
    action: str,
    prepare: Callable[[Path], Callable[[], object]],
    user: str,
    demoted_to: str,
    needs: str,
) -> None:
    press = prepare(home)
    before = _state(home)
    set_role(home, user, demoted_to)  # taken away while the page is open
    at = press()
    assert isinstance(at, AppTest)
    no_exceptions(at)
    said = texts(at.error)
    assert f"{action.replace('_', ' ')} needs '{needs}'" in said, said
    assert _state(home) == before
    assert (f"user:{user}", "denied") in [(a, o) for a, o, _ in audited(home, action)]


def test_editors_give_feedback_label_and_upload(home: Path) -> None:
    settings = Settings(home=home)
    at = ask(app(user="ed"), LEAVE_QUESTION)
    button(at, "Correct").click().run()
    assert "Saved as a correct answer" in texts(at.success)
    (pair,) = FeedbackStore(settings.feedback_file).list()
    assert pair.meta["author"] == "user:ed"

    at = app(page="views/annotate.py", user="ed")
    at.text_input(key="annotate-question").input("Is there parking?")
    at.checkbox(key="annotate-span-none").check().run()
    button(at, "Save pair").click().run()
    assert "Saved" in texts(at.success)
    assert len(FeedbackStore(settings.feedback_file).list()) == 2

    at.switch_page("views/documents.py").run()
    at.file_uploader[0].set_value(("desk.txt", b"Hot desks are booked.", "text/plain")).run()
    button(at, "Add to the index").click().run()
    no_exceptions(at)
    assert "desk.txt: indexed" in texts(at.success)
    for action in ("feedback", "label", "upload"):
        assert audited(home, action)[-1][:2] == ("user:ed", "ok"), action


# -- the access rules on every view -------------------------------------------------------------


def test_an_eng_viewer_sees_no_hr_document_title_path_count_or_question(
    access_page_home: Path,
) -> None:
    home = access_page_home
    settings = Settings(home=home)
    store = PassageStore.load(settings.index_dir)
    salaries = next(r for r in store.sources() if r.source.endswith("hr/salaries.md"))

    # The hr viewer asks about salaries and gets the hr document.
    hana = ask(app(user="hana"), SALARY_QUESTION)
    no_exceptions(hana)
    assert "collection/hr/salaries.md" in everything(hana)
    assert "4 documents" in texts(hana.sidebar.caption)
    # A labeled pair about the salaries, as an hr editor would write it.
    text = store.source_text(salaries.doc_id)
    pair = annotation_pair(SALARY_QUESTION, salaries, text, None, None, author="user:harry")
    pair.save(FeedbackStore(settings.feedback_file))

    eve = app(user="eve")
    assert "2 documents" in texts(eve.sidebar.caption)
    ask(eve, SALARY_QUESTION)
    no_exceptions(eve)
    shown = everything(eve)
    answers = "\n".join(e.value for e in eve.get("html"))
    assert 'class="docqa-answer"' in answers  # answered, from what eve may see
    assert leaks_hr(shown.replace(SALARY_QUESTION, "")) == []
    folders = eve.sidebar.multiselect(key="filter_folders").options
    assert folders and not any("hr" in f for f in folders)

    # The hr document's view and download: the same answer as a document that does not exist.
    eve.switch_page("views/document.py")
    eve.query_params.update({"doc": salaries.doc_id})
    eve.run()
    assert "not in the index" in texts(eve.warning)
    assert leaks_hr(everything(eve)) == [] and not eve.get("download_button")

    eve.switch_page("views/documents.py").run()
    assert len(eve.dataframe[0].value) == 2
    assert leaks_hr(everything(eve)) == []

    # Monitor: her own question only (hana's is not hers).
    eve.switch_page("views/monitor.py").run()
    no_exceptions(eve)
    assert next(str(m.value) for m in eve.metric if m.label == "Questions") == "1"
    assert len(QuestionLog(settings.question_log_file).questions()) == 2  # hana's and hers

    # An eng editor whose log holds two questions marked wrong: one citing an eng document, one
    # citing the salaries (asked before the rule, say). The label queue offers only the first.
    log = QuestionLog(settings.question_log_file)
    deploy = next(r for r in store.sources() if r.source.endswith("eng/deploy.md"))
    for question, record in ((DEPLOY_QUESTION, deploy), (SALARY_QUESTION, salaries)):
        cited = AnswerResult(
            answer="x", score=0.9, document=record.source, doc_id=record.doc_id, context="x"
        )
        asked = log.record(question, [cited], channel="page", latency_ms=5.0, reader="tiny",
                           top_k=5, asker="user:eddie")  # fmt: skip
        log.add_feedback(asked, "wrong")
    eddie = app(page="views/annotate.py", user="eddie")
    no_exceptions(eddie)
    assert "Label queue: 1 questions to label" in [e.label for e in eddie.expander]
    assert DEPLOY_QUESTION in everything(eddie)
    assert len(eddie.selectbox(key="annotate-doc").options) == 2
    assert leaks_hr(everything(eddie)) == []
    assert not eddie.get("download_button")  # no pair it may see: nothing to export

    root = app(page="views/annotate.py", user="root")  # admins see everything
    assert len(root.selectbox(key="annotate-doc").options) == 4
    assert "salaries" in everything(root)
