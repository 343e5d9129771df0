"""DocQA's web page: ``streamlit run ui/app.py -- --home DIR`` (what ``docqa ui`` runs).

Pages (one module each under ``ui/views``): Ask (default), Document (opened from an answer),
Feedback, Monitor, Annotate, Documents and Models. A status line at the top of the sidebar
says what is indexed (as far as the caller may see), which reader serves and whether it runs on
the CPU or a GPU.

Nothing is drawn before a login (:mod:`ui.auth`, configured as :mod:`ui.login_config` says), and
the navigation offers only the pages the caller's role may use: viewers ask, read documents and
see their own questions on the Monitor page; editors also judge answers (Feedback) and label
(Annotate) and upload documents; admins also remove documents, edit or delete labeled pairs,
retrain and promote readers (Models).
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``streamlit run`` puts this file's folder on sys.path, not the repository root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from identity import Action, Caller  # noqa: E402
from ui import auth, render, state  # noqa: E402

# Not "pages": Streamlit would treat a "pages" folder as an old-style multipage app and run a
# page without this script (no navigation, no status line) when a session starts on its URL.
PAGES = Path(__file__).resolve().parent / "views"


def pages(who: Caller) -> list[st.Page]:
    """The pages ``who``'s role may use; the others are not offered at all."""
    shown = [
        st.Page(PAGES / "ask.py", title="Ask", icon=":material/search:", default=True),
        st.Page(
            PAGES / "document.py",
            title="Document",
            icon=":material/description:",
            url_path="document",
            visibility="hidden",
        ),
    ]
    if who.may(Action.FEEDBACK):
        shown.append(
            st.Page(
                PAGES / "feedback.py",
                title="Feedback",
                icon=":material/thumbs_up_down:",
                url_path="feedback",
            )
        )
    shown.append(
        st.Page(
            PAGES / "monitor.py", title="Monitor", icon=":material/monitoring:", url_path="monitor"
        )
    )
    if who.may(Action.LABEL):
        shown.append(
            st.Page(
                PAGES / "annotate.py",
                title="Annotate",
                icon=":material/edit_note:",
                url_path="annotate",
            )
        )
    shown.append(
        st.Page(
            PAGES / "documents.py",
            title="Documents",
            icon=":material/folder_open:",
            url_path="documents",
        )
    )
    if who.may(Action.RETRAIN):
        shown.append(
            st.Page(
                PAGES / "models.py",
                title="Models",
                icon=":material/model_training:",
                url_path="models",
            )
        )
    return shown


st.set_page_config(page_title="DocQA", page_icon=":material/quick_reference:", layout="wide")
render.inject_style()
caller = auth.current()
if caller is None:
    auth.login_page()  # stops the run: nothing else of the page before a login
assert caller is not None
auth.note_sso_login(caller)
navigation = st.navigation(pages(caller))
# The status line sits at the top of the sidebar. It is written before the page runs (a page
# may end early with st.stop) and again after, to reflect what the page just did (an upload,
# another reader). It counts only what the caller may see.
status_line = st.sidebar.empty()
status_line.caption(f":material/database: {state.status(caller).line()}")
auth.account_box(caller)
auth.show_flash()
navigation.run()
status_line.caption(f":material/database: {state.status(caller).line()}")
