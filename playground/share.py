"""Share links: a spec (and optionally training settings) packed into a URL-safe string.

Encoding: canonical JSON -> zlib (level 9) -> base64url without padding, prefixed with a format
tag ``v1.``. A VGG-16 spec packs into about 400 characters. Decoding checks the size before and
after decompression (a tampered link cannot expand into megabytes), then runs the normal spec
validation, so a broken link gives a :class:`~playground.errors.ConfigError` with a clear
message and never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from playground.build import check
from playground.errors import ConfigError, SpecError
from playground.limits import load_json
from playground.spec import NetworkSpec, spec_from_dict

PREFIX = "v1."
MAX_LINK_CHARS = 8_000  # in the README's Limits table
MAX_JSON_BYTES = 200_000


def encode_state(data: dict[str, Any]) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    packed = base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode()
    return PREFIX + packed


def decode_state(text: str) -> dict[str, Any]:
    if not text.startswith(PREFIX):
        raise ConfigError("this share link is not from this playground (unknown format)")
    body = text[len(PREFIX):]
    if len(body) > MAX_LINK_CHARS:
        raise ConfigError("this share link is too long to be a design")
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        d = zlib.decompressobj()
        raw = d.decompress(packed, MAX_JSON_BYTES)
    except (binascii.Error, zlib.error, ValueError):
        raise ConfigError(
            "this share link is damaged (it may have been cut off when copied)"
        ) from None
    if d.unconsumed_tail:
        raise ConfigError("this share link expands to too much data")
    data = load_json(raw, "this share link")  # depth, size, digits and UTF-8 checked
    if not isinstance(data, dict):
        raise ConfigError("this share link does not hold a design")
    return data


def encode_spec(spec: NetworkSpec) -> str:
    return encode_state(spec.to_dict())


def decode_spec(text: str) -> NetworkSpec:
    """The spec in a share link; ``ConfigError`` for a damaged link or an invalid design."""
    data = decode_state(text)
    try:
        spec = spec_from_dict(data)
        check(spec)
        return spec
    except SpecError as err:
        raise ConfigError(f"this share link holds an invalid design: {err}") from None


def app_root(page_url: str | None) -> str:
    """The app's root address, ending in ``/``, from the current page's address
    (``st.context.url``): same scheme, host and base path, the page's name, query and
    fragment dropped. Without a host the root is relative (``/``)."""
    parts = urlsplit(page_url or "")
    base = parts.path.rsplit("/", 1)[0] + "/"  # drop the page's name, keep a base path
    return urlunsplit((parts.scheme, parts.netloc, base, "", "")) if parts.netloc else "/"


def share_link(page_url: str | None, spec: NetworkSpec) -> str:
    """The link that opens ``spec`` on Build: the app's root on the same host (and base path),
    ``?d=`` and nothing else, so a student's name and key (in their own page's address) never
    travel with a shared design. ``page_url`` is the current page's address (``st.context.url``);
    without one the link is relative (``/?d=...``)."""
    return f"{app_root(page_url)}?d={encode_spec(spec)}"


def page_link(page_url: str | None, page: str, **query: str) -> str:
    """The address of the app's page ``page`` (its url_path, e.g. ``leaderboard``) with
    ``query`` and nothing else: ``https://host/base/leaderboard?a=shapes-50k``."""
    root = app_root(page_url)
    return f"{root}{page}" + (f"?{urlencode(query)}" if query else "")
