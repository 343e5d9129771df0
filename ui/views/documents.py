"""Documents page: upload files into the index, list what is indexed, remove documents."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from indexer.convert import SUPPORTED_EXTENSIONS
from indexer.run import IndexingError
from indexer.uploads import MAX_UPLOAD_BYTES, index_uploads, is_upload, remove_document
from pipelines.store import StoreError
from ui import render, state

settings = state.settings()
st.title("Documents")

# -- upload -------------------------------------------------------------------------------------
st.subheader("Add documents")
uploader_round = st.session_state.setdefault("uploader_round", 0)
files = st.file_uploader(
    f"PDF, Word, HTML, Markdown or text files, up to {MAX_UPLOAD_BYTES // 2**20} MB each",
    type=sorted(ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS),
    accept_multiple_files=True,
    key=f"uploader-{uploader_round}",
)
if st.button("Add to the index", type="primary", disabled=not files, icon=":material/upload:"):
    bar = st.progress(0.0, text="Starting…")

    def _progress(done: int, total: int, message: str) -> None:
        bar.progress(done / total if total else 1.0, text=message)

    try:
        outcomes = index_uploads(
            [(f.name, f.getvalue()) for f in files or []], settings, on_progress=_progress
        )
    except (IndexingError, StoreError, OSError) as exc:
        st.session_state["upload_outcomes"] = [("error", f"Nothing was indexed: {render.md(exc)}")]
    else:
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
                        f"{render.md(outcome.name)}: already indexed ({render.md(outcome.reason)})",
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
records = store.sources() if store is not None else []
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
    if st.button("Remove from the index", key="remove-button", icon=":material/delete:"):
        try:
            removed = remove_document(settings, chosen)
        except (IndexingError, StoreError, OSError) as exc:
            st.session_state["remove_message"] = ("error", f"Not removed: {render.md(exc)}")
        else:
            st.session_state["remove_message"] = (
                ("success", f"Removed {render.md(removed)} from the index.")
                if removed
                else ("info", "It was not in the index any more.")
            )
        st.session_state["remove_round"] = remove_round + 1
        st.rerun()
