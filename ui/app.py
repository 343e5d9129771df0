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


# The pages after Ask and Document, in the menu's order: (view module, title, icon, the action a
# role needs to be offered it; None: every signed-in role). Each opens at /<module name>.
MENU: tuple[tuple[str, str, str, Action | None], ...] = (
    ("feedback.py", "Feedback", ":material/thumbs_up_down:", Action.FEEDBACK),
    ("monitor.py", "Monitor", ":material/monitoring:", None),
    ("annotate.py", "Annotate", ":material/edit_note:", Action.LABEL),
    ("documents.py", "Documents", ":material/folder_open:", None),
    ("models.py", "Models", ":material/model_training:", Action.RETRAIN),
)


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
    for view, title, icon, needs in MENU:
        if needs is None or who.may(needs):
            url_path = view.removesuffix(".py")
            shown.append(st.Page(PAGES / view, title=title, icon=icon, url_path=url_path))
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
