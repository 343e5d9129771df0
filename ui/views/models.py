"""Models page: the reader versions with their held-out metrics; choose which one serves; retrain
on the labeled pairs in the background (live curves, cancel, the gate's verdict, promote).

Admins only. Serving another version goes through the same gate as ``docqa promote`` and the
API's promote (:func:`reader_training.promote.promote_model`: refused when it scores lower than
the serving reader, unless forced); a retrained version is offered for promotion when its gate
recommends it, and otherwise only to an admin who asks to force it. Every callback checks the
role again, and starts, cancellations and promotions are written to the audit log.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from identity import Action
from pipelines.reader_registry import ReaderNotFoundError, list_models
from reader_training import jobs
from reader_training.promote import PromotionError, promote_model
from ui import auth, render, state

settings = state.settings()
caller = auth.page_for(Action.RETRAIN)
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

# A full run draws everything a decision in the retrain panel changed: no extra rerun needed.
st.session_state.pop("retrain_decided", None)
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


def _serve(name: str, force: bool) -> None:
    who = auth.permitted(Action.PROMOTE, target=name)
    if who is None:
        return
    try:
        account = promote_model(settings, name, force=force)
    except (PromotionError, ReaderNotFoundError, ValueError, OSError) as exc:
        auth.audit(who, Action.PROMOTE.value, "failed", name, forced=force, reason=str(exc))
        st.session_state["models_message"] = ("error", f"Not switched: {render.md(exc)}")
        return
    auth.audit(who, Action.PROMOTE.value, "ok", name, forced=force, result=account)
    st.session_state["models_message"] = (
        "success",
        f"{render.md(name)} now answers questions. {render.md(account)}",
    )


names = [info.name for info in models]
serving = next((info.name for info in models if info.serving), None)
chosen = st.selectbox(
    "Reader", names, index=names.index(serving) if serving in names else 0, key="models-choice"
)
force_serve = st.checkbox(
    "Serve it even if it scores lower than the serving reader",
    key="models-force",
    help="Without this, a version that scores lower on the evaluation pairs is refused "
    "(as `docqa promote` refuses it without --force).",
)
st.button(
    "Serve this reader",
    type="primary",
    disabled=chosen == serving,
    on_click=_serve,
    args=(chosen, force_serve),
    key="models-serve",
)

# -- retrain on the labeled pairs (reader_training.jobs) ------------------------------------------
st.divider()
st.subheader("Retrain on labeled pairs")


# Buttons inside the panel rerun only the panel (a fragment): their messages are shown there.
def _start() -> None:
    who = auth.permitted(Action.RETRAIN)
    if who is None:
        return
    try:
        job = jobs.start_retrain(settings)
    except (jobs.JobError, OSError) as exc:
        auth.audit(who, Action.RETRAIN.value, "failed", reason=str(exc))
        st.session_state["retrain_message"] = ("error", f"Not started: {render.md(exc)}")
        return
    auth.audit(who, Action.RETRAIN.value, "ok", job.name, pairs=job.pairs)
    st.session_state["retrain_message"] = ("success", f"Training {job.name} in the background.")


def _cancel() -> None:
    who = auth.permitted(Action.RETRAIN)
    if who is None:
        return
    try:
        job = jobs.cancel_retrain(settings)
    except jobs.JobError as exc:
        st.session_state["retrain_message"] = ("error", render.md(exc))
        return
    auth.audit(who, Action.RETRAIN.value, "ok", job.name, change="cancelled")
    st.session_state["retrain_message"] = ("success", f"{render.md(job.name)} was cancelled.")


def _decide(promote: bool, force: bool = False) -> None:
    """Promote the finished job's version (only when its gate recommends it, or forced) or
    discard it."""
    job = jobs.current_job(settings)
    who = auth.permitted(Action.PROMOTE, target=job.name if job else None)
    if who is None:
        return
    recommended = bool(job and job.verdict and job.verdict.get("recommend_promotion"))
    if promote and not recommended and not force:
        auth.audit(who, Action.PROMOTE.value, "failed", job.name if job else None,
                   reason="the gate advises against it")  # fmt: skip
        st.session_state["retrain_message"] = (
            "error",
            "Not promoted: the gate advises against it (tick “Promote anyway” to force it).",
        )
        return
    try:
        job = jobs.decide(settings, promote)
    except (jobs.JobError, ReaderNotFoundError) as exc:
        st.session_state["retrain_message"] = ("error", render.md(exc))
        return
    auth.audit(
        who,
        Action.PROMOTE.value,
        "ok",
        job.name,
        decision="promoted" if promote else "discarded",
        forced=force and not recommended,
    )
    message = "now answers questions" if promote else "was discarded"
    st.session_state["models_message"] = ("success", f"{render.md(job.name)} {message}.")
    st.session_state["retrain_decided"] = True  # the whole page shows the new serving reader


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f", about {minutes} min {secs:02d} s left" if minutes else f", about {secs} s left"


@st.fragment(run_every=2.0)
def retrain_panel() -> None:
    """Redrawn every two seconds, so the curves move while the rest of the page stays put."""
    if st.session_state.pop("retrain_decided", False):
        st.rerun()  # the models table and the status line change with the serving reader
    kind, message = st.session_state.pop("retrain_message", ("", ""))
    if message:
        {"success": st.success, "error": st.error}[kind](message)
    job = jobs.current_job(settings)
    if job is None or not job.active:
        pairs = jobs.labeled_pair_count(settings)
        st.caption(
            f"{pairs} labeled pairs (feedback and annotations). A new reader version continues "
            "from the serving one with replay; it serves only after you promote it."
        )
        st.button(
            f"Retrain on {pairs} pairs",
            icon=":material/model_training:",
            disabled=pairs == 0,
            on_click=_start,
            key="retrain-start",
        )
    if job is None:
        return
    state = jobs.progress(settings, job)
    if job.active:
        total, step = state["max_steps"], state["step"]
        label = f"{job.name}: {job.status}" + (f", step {step} of {total}" if total else "")
        st.progress(step / total if total else 0.0, text=label + _eta(state["eta_seconds"]))
        st.button("Cancel", icon=":material/cancel:", on_click=_cancel, key="retrain-cancel")
    else:
        st.caption(f"Last retraining: {job.name}, {job.status}")
    if state["loss"] or state["heldout_f1"]:
        left, right = st.columns(2)
        if state["loss"]:
            left.line_chart(pd.DataFrame(state["loss"], columns=["step", "loss"]).set_index("step"))
        if state["heldout_f1"]:
            f1 = pd.DataFrame(state["heldout_f1"], columns=["step", "held-out F1"])
            right.line_chart(f1.set_index("step"))
    if job.status == "failed":
        st.error(f"The retraining failed: {render.md(job.error or 'see its log')}")
    if job.status == "finished" and job.verdict is not None:
        verdict = job.verdict
        shown = st.success if verdict["recommend_promotion"] else st.warning
        shown(f"Gate: {render.md(verdict['summary'])}")
        if not job.decided:
            recommended = bool(verdict["recommend_promotion"])
            force = False
            if not recommended:
                force = st.checkbox(
                    "Promote anyway, against the gate's advice", key="retrain-force"
                )
            row = st.container(horizontal=True)
            if recommended or force:
                row.button(
                    f"Promote {job.name}",
                    type="primary",
                    on_click=_decide,
                    args=(True, force),
                    key="retrain-promote",
                )
            row.button("Discard", on_click=_decide, args=(False,), key="retrain-discard")
        else:
            st.caption(f"{job.name} was {job.decided}.")


retrain_panel()
