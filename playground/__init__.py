"""Architecture Playground core: spec -> validate -> build -> analyse -> train -> store.

This package never imports streamlit; the CLI (``python -m playground``), the tests and the
Streamlit pages all call it directly and receive plain data.
"""

__version__ = "0.1.0"
