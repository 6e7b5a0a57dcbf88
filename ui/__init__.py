"""Streamlit-side helpers shared by the pages: state, widgets, formatting and Plotly charts."""
