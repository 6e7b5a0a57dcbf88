"""Learn: short lessons with live figures (filled in by the lessons issue)."""

import streamlit as st

st.title("Learn")
st.info("Lessons are not available yet: they arrive with the lessons issue.")
