"""DARTboard: watch differentiable architecture search happen, and collapse.

    streamlit run app.py

The entry point: page config, logo and CSS, the navigation over pages/, and the one run manager
of this server process (created here, shared by every session through st.cache_resource; it
stops and joins its search threads when the server exits).

Reading order is also start-up order: everything the browser needs to draw DARTboard's frame
(config, logo, navigation) comes before the engine's imports (torch alone takes seconds on a
small CPU), and a "Starting DARTboard…" state stands in for the page while they load.
"""

import sys
from pathlib import Path

import streamlit as st

ASSETS = Path(__file__).resolve().parent / "assets"

st.set_page_config(page_title="DARTboard", page_icon=str(ASSETS / "favicon.png"), layout="wide")
st.logo(str(ASSETS / "logo.svg"), icon_image=str(ASSETS / "icon.svg"), size="large")
st.html(ASSETS / "style.css")

page = st.navigation([
    st.Page("pages/launch.py", title="Launch", icon=":material/rocket_launch:",
            url_path="launch", default=True),
    st.Page("pages/live.py", title="Live", icon=":material/monitoring:", url_path="live"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_on:", url_path="sweep"),
    st.Page("pages/runs.py", title="Runs", icon=":material/table_rows:", url_path="runs"),
    st.Page("pages/guide.py", title="Guide", icon=":material/school:", url_path="guide"),
], position="top")

# The first run of a fresh server imports the engine (torch alone takes seconds on a small CPU):
# a "starting" state stands in for the page meanwhile. Later runs find it imported and go on.
starting = st.empty()
if "pages.common" not in sys.modules:
    starting.status("Starting DARTboard…", state="running")
from pages import common  # noqa: E402  (after the navigation is on screen, on purpose)

common.manager()
starting.empty()
page.run()
