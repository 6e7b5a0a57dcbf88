"""What the Train page puts in its address, so a reload or another device shows the same page.

- ``?net=preset:<name>`` or ``?net=saved:<name>``: the network chosen. Absent: the design open
  on Build, which travels as ``?d=`` in the Build page's share-link encoding
  (``playground.share``), so it survives a reload too.
- ``?data=<name>``: the data set.
- ``?run=<id>``: the run shown. Runs live in the server's store, so the link reopens the run on
  any device, for its owner and the teacher; anyone else is told it is not theirs.

:func:`restore_from_url` reads them once per session, on the first visit to Train (the
session's other state wins afterwards: the Train widgets keep their values across page
switches with ``persist_state="session"``). A value that cannot be used adds one line to the
page's messages and is dropped; nothing raises. :func:`mirror_to_url` writes them back on
every run of the page.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from playground.access import AccessDenied, Actor
from playground.build import validate
from playground.data import list_datasets
from playground.designs import list_designs
from playground.errors import PlaygroundError
from playground.presets import PRESETS
from playground.share import encode_spec
from ui.jobs import get_store

CURRENT = "__current__"  # the network option "Design from Build"
_READ = "_tr_url_read"  # set once the address has been read in this session
MAX_SHOWN = 40  # characters of a bad value quoted back in a message


def _quote(value: str) -> str:
    return repr(value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "...")


def network_problem(key: str, user: str) -> str | None:
    """Why ``?net=<key>`` cannot be used (plain text), or ``None`` when it can."""
    kind, _, name = key.partition(":")
    if kind == "preset":
        return None if name in PRESETS.names() else f"there is no preset {_quote(name)}"
    if kind == "saved":
        if not user:
            return "saved designs need your name in the sidebar"
        names: list[str] = []
        with contextlib.suppress(PlaygroundError):
            names = [d.name for d in list_designs(user)]
        return None if name in names else f"you have no saved design {_quote(name)}"
    return f"{_quote(key)} is not a network (expected preset:<name> or saved:<name>)"


def parse_run_id(text: str) -> int | None:
    """``?run=`` as a run id: digits only, at most 18 of them; ``None`` otherwise."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def restore_from_url(user: str, actor: Actor | None) -> None:
    """On the session's first visit to Train, take network, data set and run from the URL."""
    state = st.session_state
    if state.get(_READ):
        return
    state[_READ] = True
    params = st.query_params
    net, data, run = params.get("net"), params.get("data"), params.get("run")
    if net is not None:
        problem = network_problem(net, user)
        if problem:
            state.flash.append(("warning", f"The link's network cannot be opened: {problem}. "
                                           "Showing the design from Build."))
        else:
            state.tr_network = net
            if net.startswith("preset:"):  # its own data set, unless the link names one
                state.tr_dataset = PRESETS.get(net[7:]).dataset
    if data is not None:
        if data in {d.name for d in list_datasets()}:
            state.tr_dataset = data
        else:
            state.flash.append(("warning", f"The link's data set {_quote(data)} does not "
                                           "exist here; showing the network's own."))
    if run is not None:
        run_id = parse_run_id(run)
        if run_id is None:
            state.flash.append(("warning", f"The link's run {_quote(run)} is not a run number."))
        else:
            try:
                if actor is None:
                    raise AccessDenied("enter your name first: runs are shown to their owner")
                found = get_store().find_run(run_id, by=actor)
            except AccessDenied as err:
                state.flash.append(("warning", f"The link's run #{run_id} cannot be opened "
                                               f"here: {err}."))
            else:
                if found is None:
                    state.flash.append(("warning", f"The link's run #{run_id} does not exist "
                                                   "(it may have been deleted)."))
                else:
                    state.tr_run = run_id


def put_param(name: str, value: str | None) -> None:
    """Set (or with ``None`` remove) one address parameter, writing only on a change."""
    params = st.query_params
    if value is None:
        if name in params:
            del params[name]
    elif params.get(name) != value:
        params[name] = value


def mirror_to_url(network: str, dataset: str, run_id: int | None) -> None:
    """Write the page's address: ``net``, ``data``, ``run`` and the Build design as ``d``."""
    put_param("net", None if network == CURRENT else network)
    put_param("data", dataset)
    put_param("run", None if run_id is None else str(run_id))
    spec = st.session_state.spec
    if spec is not None and not st.session_state.zoo and not validate(spec):
        put_param("d", encode_spec(spec))
