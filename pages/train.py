"""Train: short instrumented trainings with live charts (filled in by the training issue)."""

import streamlit as st

st.title("Train")
st.info("Training is not available yet: it arrives with the training issue.")
