"""Where the runbooks live: one absolute base URL for alert annotations and dashboard links.

Why absolute: an alert's `runbook_url` is opened from Alertmanager, a pager or a chat
message, and a Grafana link from a browser on Grafana's host; a path relative to this
repository means nothing there. The runbooks are the sections of `docs/operations.md`;
serve or render that file wherever your operators read documentation and regenerate:

    CITYOPS_RUNBOOK_BASE_URL=https://git.example.org/city/cityops/-/blob/main/docs/operations.md \\
        python -m deploy.prometheus.generate --out /etc/prometheus/cityops
    python -m deploy.grafana.generate --runbook-base-url https://.../operations.md --out DIR

Each alert's section is the anchor of its heading (`### CityopsWorkerDown` ->
`#cityopsworkerdown`), as Markdown renderers make them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

#: The base the committed files carry (a placeholder host: set your own, see above).
DEFAULT_BASE_URL = "https://cityops.example/docs/operations.md"
#: The environment variable that overrides it for the generators.
BASE_URL_ENV = "CITYOPS_RUNBOOK_BASE_URL"
#: The runbook document in this repository (its headings are the anchors).
RUNBOOK_FILE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


class RunbookError(ValueError):
    """The base URL is not absolute, or a runbook section does not exist."""


def base_url(override: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The base URL: `override`, else `$CITYOPS_RUNBOOK_BASE_URL`, else the default;
    it must be an absolute http(s) URL without a fragment."""
    url = override or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        msg = f"runbook base URL must be an absolute http(s) URL without '#', got {url!r}"
        raise RunbookError(msg)
    return url


def anchor(heading: str) -> str:
    """A Markdown heading's anchor: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_url(section: str, base: str) -> str:
    """The absolute URL of a runbook section (an alert name or a heading)."""
    return f"{base}#{anchor(section)}"


def sections(path: Path = RUNBOOK_FILE) -> set[str]:
    """The anchors of every heading of the runbook document."""
    return {anchor(match) for match in _HEADING.findall(path.read_text(encoding="utf-8"))}
