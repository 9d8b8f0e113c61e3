"""The analyst's loop, timed: edit one SQL file of a built project, then the README's commands.

Usage: ``python bench/analyst_loop.py [--project-dir DIR]`` on a project built by ``make demo``
(default: the repository). The project (sources, ``data/``, ``target/``) is copied to a
temporary folder first, so the original is left as it was; the copy gets its own Feast registry
and online store (``feast apply`` + ``skewless materialize``: a registry copied along would make
Feast drop the original's online tables, its infra records absolute paths). None of that is
timed.

The edit: ``lead_engagement.email_open_rate_30d`` becomes 0 instead of NULL for a lead sent no
email in the window (a value every lead served at now changes). Then, each step a separate
command as an analyst types it (with ``DBT_PROFILES_DIR=.``):

1. ``dbt build --select lead_engagement+`` (the view, its tests, the training sets);
2. ``skewless check``;
3. ``feast apply`` (in ``feature_repo/``);
4. ``skewless materialize`` (up to now);
5. ``skewless serve`` started, until ``POST /features`` answers the edited value (0.0) for a
   lead that had NULL before: the new definition is served.

Prints ``name: seconds`` per step, ``loop_total``, and the load average before and after.

``--dev``: the same edit with ``skewless dev`` running (started and serving before the edit,
not timed): ``dev_loop_total`` is the time from the file's save to the first ``POST /features``
answering the edited value, and ``dev_<step>`` the step times ``skewless dev`` printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))
from bench.processes import free_port, process  # noqa: E402
from skewless.dev_loop import STEPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIEW = "lead_engagement"
FEATURE = "email_open_rate_30d"
BEFORE = "/ nullif(send_windows.emails_sent_30d, 0) as email_open_rate_30d"
AFTER = "/ nullif(send_windows.emails_sent_30d, 0), 0) as email_open_rate_30d"
NEW_START = "    coalesce(cast(open_windows.emails_opened_30d as"
OLD_START = "    cast(open_windows.emails_opened_30d as"
IGNORE = shutil.ignore_patterns(".venv", ".git", "logs", ".cache", "__pycache__")


def line(name: str, value: float | str) -> None:
    print(f"{name}: {value:.1f}" if isinstance(value, float) else f"{name}: {value}", flush=True)


def edit(sql: Path) -> None:
    """Rate 0 instead of NULL when nothing was sent: one SQL file, as an analyst edits it."""
    text = sql.read_text()
    if BEFORE not in text or OLD_START not in text:
        raise SystemExit(f"{sql}: the expression this benchmark edits is not there any more")
    sql.write_text(text.replace(OLD_START, NEW_START).replace(BEFORE, AFTER))


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def served(port: int, keys: list[int]) -> list:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"keys": {"lead_id": keys}, "features": [f"{VIEW}:{FEATURE}"]})
    conn.request("POST", "/features", body, {"Content-Type": "application/json"})
    reply = json.loads(conn.getresponse().read())
    return reply["results"][FEATURE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument("--dev", action="store_true", help="time the loop of `skewless dev`")
    args = parser.parse_args()
    source = args.project_dir.resolve()
    if not (source / "target" / "manifest.json").exists():
        raise SystemExit(f"{source}: not built (run `make demo` first)")
    bin_dir = Path(sys.executable).parent
    line("load_average_before", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="analyst-loop-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(source, project, ignore=IGNORE, symlinks=True)
        shutil.rmtree(project / "data" / "feast", ignore_errors=True)
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(project),
            "HOME": tmp,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        keys = _keys_within_ttl(project)
        steps = {
            "dbt_build_select": [str(bin_dir / "dbt"), "build", "--select", f"{VIEW}+"],
            "skewless_check": [str(bin_dir / "skewless"), "check"],
            "feast_apply": [str(bin_dir / "feast"), "apply"],
            "skewless_materialize": [str(bin_dir / "skewless"), "materialize", "--quiet"],
        }
        for name in ("feast_apply", "skewless_materialize"):  # the built project's store
            run(steps[name], project / "feature_repo" if name == "feast_apply" else project, env)
        if args.dev:
            dev_loop(project, env, keys, Path(tmp) / "dev.log")
            line("load_average_after", " ".join(f"{x:.2f}" for x in os.getloadavg()))
            return
        total = 0.0
        start = time.perf_counter()
        edit(project / "models" / "features" / f"{VIEW}.sql")
        line("edit", time.perf_counter() - start)
        for name, cmd in steps.items():
            start = time.perf_counter()
            run(cmd, project / "feature_repo" if name == "feast_apply" else project, env)
            total += time.perf_counter() - start
            line(name, time.perf_counter() - start)
        port = free_port()
        start = time.perf_counter()
        serve = [str(bin_dir / "skewless"), "serve", "--port", str(port)]
        with process(
            serve, Path(tmp) / "serve.log", lambda: _answers(port, keys), cwd=project, env=env
        ):
            values = served(port, keys)
        line("serve_until_edited_value", time.perf_counter() - start)
        total += time.perf_counter() - start
        if not values or any(v is None for v in values):
            raise SystemExit(f"the edited definition is not served: {values}")
        line("loop_total", total)
    line("load_average_after", " ".join(f"{x:.2f}" for x in os.getloadavg()))


def dev_loop(project: Path, env: dict[str, str], keys: list[int], log: Path) -> None:
    """Start ``skewless dev``, edit, and time until the API serves the edited value."""
    port = free_port()
    dev = [str(Path(sys.executable).parent / "skewless"), "dev", "--port", str(port)]
    ready = lambda: log.exists() and "watching" in log.read_text()  # noqa: E731
    with process(dev, log, ready, cwd=project, env=env):
        before = served(port, keys)
        if all(v is not None for v in before):
            raise SystemExit("every chosen lead already has an open rate: nothing to see")
        start = time.perf_counter()
        edit(project / "models" / "features" / f"{VIEW}.sql")
        deadline = start + 600
        while time.perf_counter() < deadline:
            values = served(port, keys)
            if all(v is not None for v in values):
                break
            if "nothing new is served" in log.read_text():
                raise SystemExit(f"skewless dev stopped the cycle:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        else:
            raise SystemExit(f"the edited value was not served in 600 s:\n{log.read_text()}")
        line("dev_loop_total", time.perf_counter() - start)
        while "served in" not in log.read_text() and time.perf_counter() < deadline:
            time.sleep(0.1)  # the value shows once written, before the last steps are said
    cycle = log.read_text().split("change seen")[-1]
    print("\n".join(f"# {text.strip()}" for text in cycle.splitlines() if text.strip()))
    for text in cycle.splitlines():
        parts = text.split()
        if len(parts) >= 3 and parts[2] == "s" and parts[0] in STEPS:
            line(f"dev_{parts[0]}", float(parts[1]))


def _keys_within_ttl(project: Path, n: int = 40) -> list[int]:
    """Leads whose latest lead_engagement row is younger than the view's 180 d ttl at now (older
    ones are NULL at now whatever the definition), some with no email in the last 30 days."""
    import duckdb

    path = project / "data" / "features" / f"{VIEW}.parquet"
    rows = duckdb.sql(
        f"select lead_id from read_parquet('{path}') group by lead_id "
        "having max(event_ts) > current_timestamp::timestamp - interval 170 days "
        f"order by lead_id limit {n}"
    ).fetchall()
    if not rows:
        raise SystemExit(f"{path}: no lead within the ttl at now")
    return [lead for (lead,) in rows]


def _answers(port: int, keys: list[int]) -> bool:
    try:
        return bool(served(port, keys))
    except (OSError, KeyError, ValueError):
        return False


if __name__ == "__main__":
    main()
