"""DARTboard: watch differentiable architecture search happen, and collapse.

    streamlit run app.py

The entry point: page config, logo and CSS, the navigation over pages/, and the one run manager
of this server process (created here, shared by every session through st.cache_resource; it
stops and joins its search threads when the server exits).

Reading order is also start-up order: everything the browser needs to draw DARTboard's frame
(config, logo, navigation) comes before the engine's imports (torch alone takes seconds on a
small CPU), and a "Starting DARTboard…" spinner stands in for the page while they load.
"""

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
    st.Page("pages/runs.py", title="Runs", icon=":material/table_rows:", url_path="runs"),
    st.Page("pages/guide.py", title="Guide", icon=":material/school:", url_path="guide"),
], position="top")

# Only the first run of a fresh server waits here (the spinner shows after half a second, so
# later runs, which find the modules imported and the manager cached, never flash it).
with st.spinner("Starting DARTboard…"):
    from pages import common

    common.manager()
page.run()
