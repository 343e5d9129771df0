"""DocQA's web page: ``streamlit run ui/app.py -- --home DIR`` (what ``docqa ui`` runs).

Pages (one module each under ``ui/views``): Ask (default), Document (opened from an answer),
Feedback, Monitor, Annotate, Documents and Models. A status line at the bottom of the sidebar
says what is indexed, which reader serves and whether it runs on the CPU or a GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``streamlit run`` puts this file's folder on sys.path, not the repository root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from ui import render, state  # noqa: E402

# Not "pages": Streamlit would treat a "pages" folder as an old-style multipage app and run a
# page without this script (no navigation, no status line) when a session starts on its URL.
PAGES = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="DocQA", page_icon=":material/quick_reference:", layout="wide")

navigation = st.navigation(
    [
        st.Page(PAGES / "ask.py", title="Ask", icon=":material/search:", default=True),
        st.Page(
            PAGES / "document.py",
            title="Document",
            icon=":material/description:",
            url_path="document",
            visibility="hidden",
        ),
        st.Page(
            PAGES / "feedback.py",
            title="Feedback",
            icon=":material/thumbs_up_down:",
            url_path="feedback",
        ),
        st.Page(
            PAGES / "monitor.py",
            title="Monitor",
            icon=":material/monitoring:",
            url_path="monitor",
        ),
        st.Page(
            PAGES / "annotate.py",
            title="Annotate",
            icon=":material/edit_note:",
            url_path="annotate",
        ),
        st.Page(
            PAGES / "documents.py",
            title="Documents",
            icon=":material/folder_open:",
            url_path="documents",
        ),
        st.Page(
            PAGES / "models.py", title="Models", icon=":material/model_training:", url_path="models"
        ),
    ]
)
render.inject_style()
# The status line sits at the top of the sidebar. It is written before the page runs (a page
# may end early with st.stop) and again after, to reflect what the page just did (an upload,
# another reader).
status_line = st.sidebar.empty()
status_line.caption(f":material/database: {state.status().line()}")
navigation.run()
status_line.caption(f":material/database: {state.status().line()}")
