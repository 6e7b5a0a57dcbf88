"""Compare: architectures and runs side by side (filled in by the compare issue)."""

import streamlit as st

st.title("Compare")
st.info("Side-by-side comparison is not available yet: it arrives with the compare issue.")
