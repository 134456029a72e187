"""DARTboard: watch differentiable architecture search happen, and collapse.

    streamlit run app.py

The entry point: page config, logo and CSS, the navigation over pages/, and the one run manager
of this server process (created here, shared by every session through st.cache_resource; it
stops and joins its search threads when the server exits).
"""

import streamlit as st

from pages import common

st.set_page_config(page_title="DARTboard", page_icon=str(common.ASSETS / "favicon.png"),
                   layout="wide")
st.logo(str(common.ASSETS / "logo.svg"), icon_image=str(common.ASSETS / "icon.svg"),
        size="large")
st.html(common.ASSETS / "style.css")
common.manager()

page = st.navigation([
    st.Page("pages/launch.py", title="Launch", icon=":material/rocket_launch:",
            url_path="launch", default=True),
    st.Page("pages/live.py", title="Live", icon=":material/monitoring:", url_path="live"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("pages/runs.py", title="Runs", icon=":material/table_rows:", url_path="runs"),
], position="top")
page.run()
