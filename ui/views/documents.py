"""Documents page: upload files into the index, list what is indexed, remove documents.

Everyone sees the documents they may see (the access rules); editors upload, admins remove.
The buttons' callbacks check the role again before anything is written (a role taken away while
the page was open), and uploads and removals are written to the audit log.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from identity import Action, Caller
from indexer.convert import SUPPORTED_EXTENSIONS
from indexer.run import IndexingError
from indexer.uploads import MAX_UPLOAD_BYTES, index_uploads, is_upload, remove_document
from pipelines.store import SourceRecord, StoreError
from ui import auth, render, state

settings = state.settings()
caller = auth.user()
st.title("Documents")


def _upload_clicked() -> None:
    # Callbacks run even when the page no longer draws the button (the role was taken away):
    # the refusal is shown, and the upload below only runs after this check.
    if auth.permitted(Action.UPLOAD) is not None:
        st.session_state["upload_requested"] = True


def _duplicate_reason(reason: str, visible: list[SourceRecord]) -> str:
    """Where the same content is indexed, named only when the caller may see that document."""
    if reason.endswith("(this upload)") or any(reason.endswith(f" {r.source}") for r in visible):
        return f" ({render.md(reason)})"
    return ""


def _upload(who: Caller, files: list) -> None:
    bar = st.progress(0.0, text="Starting…")

    def _progress(done: float, total: int, message: str) -> None:
        bar.progress(done / total if total else 1.0, text=message)

    try:
        outcomes = index_uploads(
            [(f.name, f.getvalue()) for f in files or []], settings, on_progress=_progress
        )
    except (IndexingError, StoreError, OSError) as exc:
        auth.audit(who, Action.UPLOAD.value, "failed", detail=str(exc))
        st.session_state["upload_outcomes"] = [("error", f"Nothing was indexed: {render.md(exc)}")]
    else:
        visible = state.sources(who)
        for outcome in outcomes:
            auth.audit(
                who,
                Action.UPLOAD.value,
                "ok" if outcome.ok else "failed",
                outcome.saved_as or outcome.name,
                status=outcome.status,
            )
        messages = []
        for outcome in outcomes:
            if outcome.ok:
                plural = "passage" if outcome.passages == 1 else "passages"
                messages.append(
                    (
                        "success",
                        f"{render.md(outcome.saved_as)}: indexed, {outcome.passages} {plural}",
                    )
                )
            elif outcome.status == "duplicate":
                messages.append(
                    (
                        "info",
                        f"{render.md(outcome.name)}: already indexed"
                        + _duplicate_reason(outcome.reason, visible),
                    )
                )
            else:
                messages.append(
                    (
                        "error",
                        f"{render.md(outcome.name)}: not indexed: {render.md(outcome.reason)}",
                    )
                )
        st.session_state["upload_outcomes"] = messages


# -- upload (editors) ---------------------------------------------------------------------------
if caller.may(Action.UPLOAD):
    st.subheader("Add documents")
    uploader_round = st.session_state.setdefault("uploader_round", 0)
    files = st.file_uploader(
        f"PDF, Word, HTML, Markdown or text files, up to {MAX_UPLOAD_BYTES // 2**20} MB each",
        type=sorted(ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS),
        accept_multiple_files=True,
        key=f"uploader-{uploader_round}",
    )
    st.button(
        "Add to the index",
        type="primary",
        disabled=not files,
        icon=":material/upload:",
        on_click=_upload_clicked,
    )
    if st.session_state.pop("upload_requested", False):
        uploader = auth.permitted(Action.UPLOAD, show=True)
        if uploader is not None and files:
            _upload(uploader, files)
            # A new uploader key empties the upload box for the next files.
            st.session_state["uploader_round"] = uploader_round + 1
            st.rerun()

    for kind, message in st.session_state.pop("upload_outcomes", []):
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)

# -- indexed documents --------------------------------------------------------------------------
st.subheader("Indexed documents")
kind, message = st.session_state.pop("remove_message", ("", ""))
if message:
    {"success": st.success, "info": st.info, "error": st.error}[kind](message)
store = state.store_or_none()
records = state.sources(caller, store)
if not records:
    st.info("Nothing is indexed yet.")
    st.stop()


def _day(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d")


st.dataframe(
    [
        {
            "Title": r.title,
            "Source": r.source,
            "Type": r.file_type,
            "Passages": r.passages,
            "Modified": _day(r.mtime),
            "Indexed": r.indexed_at.replace("T", " ")[:16],
            "Uploaded": "yes" if is_upload(settings, r.path) else "",
        }
        for r in records
    ],
    hide_index=True,
    width="stretch",
)


def _remove(doc_id: str, source: str, remove_round: int) -> None:
    who = auth.permitted(Action.DELETE_DOCUMENT, target=source)
    if who is None:
        return
    try:
        removed = remove_document(settings, doc_id)
    except (IndexingError, StoreError, OSError) as exc:
        auth.audit(who, Action.DELETE_DOCUMENT.value, "failed", source, error=str(exc))
        st.session_state["remove_message"] = ("error", f"Not removed: {render.md(exc)}")
    else:
        if removed is None:
            st.session_state["remove_message"] = ("info", "It was not in the index any more.")
        else:
            # What was erased with it, and what still holds its text (trained readers).
            auth.audit(who, Action.DELETE_DOCUMENT.value, "ok", removed.source)
            st.session_state["remove_message"] = ("success", render.md(removed.describe()))
    st.session_state["remove_round"] = remove_round + 1


# -- remove (admins) ----------------------------------------------------------------------------
if not caller.may(Action.DELETE_DOCUMENT):
    st.stop()
st.subheader("Remove a document")
by_id = {r.doc_id: r for r in records}
remove_round = st.session_state.setdefault("remove_round", 0)
chosen = st.selectbox(
    "Document",
    list(by_id),
    key=f"remove-doc-{remove_round}",
    index=None,
    placeholder="Choose a document",
    format_func=lambda d: f"{by_id[d].title} — {by_id[d].source}",
)
if chosen is not None:
    uploaded = is_upload(settings, by_id[chosen].path)
    st.caption(
        "The uploaded file is deleted too."
        if uploaded
        else "The file itself stays where it is; indexing its folder again would add it back."
    )
    st.button(
        "Remove from the index",
        key="remove-button",
        icon=":material/delete:",
        on_click=_remove,
        args=(chosen, by_id[chosen].source, remove_round),
    )
