"""Absolute runbook links in the alert rules and their promtool tests.

    python -m deploy.prometheus.generate [--runbook-base-url URL] [--out DIR] [--check]

Why a generator over hand-written YAML: the rules stay written by hand (comments and all),
and only each alert's `runbook_url` is rewritten, to `<base>#<alert name in lower case>`
(see `deploy/runbooks.py` for the base: `--runbook-base-url`, else
`$CITYOPS_RUNBOOK_BASE_URL`, else the committed default). `alerts_test.yml` expects the
same annotations, so both files are rendered together; `--out DIR` writes a deployment's
own copy, and promtool tests it there like here. `--check` fails when the committed files
are not what the generator writes.
"""

from __future__ import annotations

import re
from pathlib import Path

from deploy.generated import generator_main
from deploy.runbooks import RunbookError, runbook_url

PROMETHEUS_DIR = Path(__file__).resolve().parent
#: The files whose runbook links are rendered, in this directory.
RULE_FILES = ("alerts.yml", "alerts_test.yml")

_ALERT = re.compile(r"^\s*(?:-\s*)?(?:alert|alertname):\s*['\"]?(\w+)['\"]?\s*$")
_RUNBOOK = re.compile(r"^(\s*runbook_url:\s*)\S.*$")


def render(text: str, base: str) -> str:
    """`text` with every `runbook_url` set to the runbook of the alert it belongs to (the
    nearest `alert:` or `alertname:` above it)."""
    alert: str | None = None
    lines = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        if match := _ALERT.match(body):
            alert = match.group(1)
        elif match := _RUNBOOK.match(body):
            if alert is None:
                msg = f"line {number}: runbook_url outside any alert"
                raise RunbookError(msg)
            line = f'{match.group(1)}"{runbook_url(alert, base)}"{line[len(body) :]}'
        lines.append(line)
    return "".join(lines)


def rendered(base: str, source: Path = PROMETHEUS_DIR) -> dict[str, str]:
    """File name -> text of each rule file with its links for `base`."""
    return {name: render((source / name).read_text(encoding="utf-8"), base) for name in RULE_FILES}


def main(argv: list[str] | None = None) -> int:
    return generator_main(
        argv,
        description=(__doc__ or "").splitlines()[0],
        render=rendered,
        out=PROMETHEUS_DIR,
        command="python -m deploy.prometheus.generate",
    )


if __name__ == "__main__":
    raise SystemExit(main())
