"""Models page: the reader versions with their held-out metrics; choose which one serves."""

from __future__ import annotations

import streamlit as st

from pipelines.models import ReaderNotFoundError, list_models, set_serving
from ui import render, state

settings = state.settings()
st.title("Models")
st.caption(
    "Reader versions trained with `docqa train` (newest first) and the shipped reader. "
    "Metrics are on held-out questions; the switch applies to the next question."
)

if settings.reader_model:
    st.warning(
        f"This app was started with the reader fixed to {render.md(settings.reader_model)}; "
        "choosing another one here has no effect until it is started without it."
    )

kind, message = st.session_state.pop("models_message", ("", ""))
if message:
    {"success": st.success, "error": st.error}[kind](message)

models = list_models(settings)
if not models:
    st.info("No reader model is available: train one with `docqa train`.")
    st.stop()


def _metric(value: object, scale: str = "") -> str:
    if isinstance(value, int | float):
        return f"{value:.1f}{scale}"
    return "–"


rows = []
for info in models:
    held = info.metrics.get("metrics", {}).get("heldout", {})
    rows.append(
        {
            "Serving": "●" if info.serving else "",
            "Name": info.name,
            "Created": info.created.replace("T", " ")[:16],
            "F1": _metric(held.get("f1")),
            "Exact match": _metric(held.get("exact")),
            "F1 answerable": _metric(held.get("HasAns_f1")),
            "No-answer accuracy": _metric(held.get("NoAns_exact")),
            "Held-out questions": held.get("total", ""),
            "Path": str(info.path),
        }
    )
st.dataframe(rows, hide_index=True, width="stretch")


def _serve(name: str) -> None:
    try:
        set_serving(settings, name)
    except (ReaderNotFoundError, ValueError, OSError) as exc:
        st.session_state["models_message"] = ("error", f"Not switched: {render.md(exc)}")
        return
    st.session_state["models_message"] = ("success", f"{render.md(name)} now answers questions.")


names = [info.name for info in models]
serving = next((info.name for info in models if info.serving), None)
chosen = st.selectbox(
    "Reader", names, index=names.index(serving) if serving in names else 0, key="models-choice"
)
st.button(
    "Serve this reader",
    type="primary",
    disabled=chosen == serving,
    on_click=_serve,
    args=(chosen,),
    key="models-serve",
)
