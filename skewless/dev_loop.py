"""`skewless dev`: the analyst's loop in one long-lived process.

Started once in a built project, it checks, applies and materializes what is built, serves the
API (as `skewless serve` does) and watches every file dbt reads (models, macros, yml). Each
save runs, in this process, so dbt, Feast and the check are imported and warm once, not per
command:

1. **build**: ``dbt build --select state:modified+`` against the manifest of the last build
   (the models edited, their tests and everything downstream, training sets included);
2. **check**: ``skewless check`` (only what changed is compiled; proofs of unchanged SQL are
   reused);
3. **apply**: ``feast apply`` of the definitions read from the new manifest;
4. **materialize**: ``skewless materialize`` up to now (an edited view is reloaded whole);
5. **serve**: the API answers with the new definitions from the next request on.

A step that fails stops the cycle and says why (dbt names the model or test; the check prints
its report): a skew, a leak or a failed test is never registered nor served, and the API keeps
serving what it served before. The next save starts again from the build, with everything
modified since the last successful build. Each step prints its time.

Like ``dbt build``, the build writes the project's database in place: the dev loop is for an
analyst's copy. `skewless build` (write, audit, then publish) is what production runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from skewless.project import Project, StepFailed, dbt_summary

STATE_DIR = Path("target") / "skewless" / "dev-state"
"""The manifest of the last successful build: what ``state:modified`` compares against."""
POLL_SECONDS = 0.5
STEPS = ("build", "check", "apply", "materialize", "serve")


class CycleStopped(Exception):
    """A step of the loop failed; the message says which and why."""


@dataclass
class Cycle:
    """One run of the loop: each step's name, seconds and one-line outcome."""

    steps: list[tuple[str, float, str]] = field(default_factory=list)
    failed: str = ""

    @property
    def seconds(self) -> float:
        return sum(s for _, s, _ in self.steps)

    def run(self, name: str, step: Callable[[], str], say: Callable[[str], None]) -> None:
        """Run ``step`` (returns its outcome in a line), time it and say it."""
        start = time.perf_counter()
        try:
            outcome = step()
        except CycleStopped as exc:
            self.failed = f"{name} failed: {exc}"
            raise
        except Exception as exc:  # noqa: BLE001 - the loop outlives a step's crash, and says it
            self.failed = f"{name} failed: {type(exc).__name__}: {exc}"
            raise CycleStopped(self.failed) from exc
        finally:
            seconds = time.perf_counter() - start
        self.steps.append((name, seconds, outcome))
        say(f"  {name:<12}{seconds:6.1f} s  {outcome}")


def save_state(project: Project) -> None:
    """Keep the manifest of the build just done as the state the next build compares to."""
    state = project.root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project.manifest, state / "manifest.json")


def build_modified(project: Project) -> str:
    """``dbt build`` of what changed since the last build (and everything downstream)."""
    state = project.root / STATE_DIR
    if not (state / "manifest.json").exists():
        raise CycleStopped(f"{project.manifest} is missing: run `skewless build` first")
    try:
        result = project.dbt(
            "build",
            "--select",
            "state:modified+",
            "--state",
            str(state),
            "--exclude",
            "resource_type:seed",
        )
    except StepFailed as exc:
        raise CycleStopped(exc.detail or str(exc)) from None
    save_state(project)
    built = sorted({r.node.name for r in result.result.results if r.node.resource_type == "model"})
    return f"{', '.join(built) or 'nothing changed'} ({dbt_summary(result)})"


def check(project: Project) -> str:
    """``skewless check``: proven equal, or stop (skew, leak) printing the report."""
    from skewless.check.compiles import compile_for_check
    from skewless.check.run import check_project

    try:
        summary = compile_for_check(project)
        report = check_project(project, compiles=summary)
    except (StepFailed, ValueError) as exc:
        raise CycleStopped(str(exc)) from None
    last = report.text().splitlines()[-1]
    if report.exit_code:
        raise CycleStopped(f"{last}\n{report.text()}")
    return f"{last}; {summary.line()}"


def feast_apply(project: Project) -> str:
    """``feast apply`` in this process: the definitions module is imported afresh, so it reads
    the new manifest."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    repo = project.feature_repo
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == repo:
            del sys.modules[name]
    out = io.StringIO()
    sys.path.insert(0, str(repo))
    try:
        with contextlib.chdir(repo), contextlib.redirect_stdout(out):
            apply_total(load_repo_config(repo, project.store_yaml), repo, False)
    except SystemExit as exc:  # the definitions named a bad declaration (printed to stderr)
        raise CycleStopped(f"feast apply exited {exc.code}: {out.getvalue().strip()}") from None
    finally:
        sys.path.remove(str(repo))
    lines = [ln.strip() for ln in out.getvalue().splitlines() if ln.strip()]
    changed = [ln for ln in lines if ln.startswith(("Created", "Updated", "Deleted", "No changes"))]
    return "; ".join(changed) or "applied"


def materialize_now(project: Project) -> str:
    """``skewless materialize`` up to now."""
    from skewless.clock import utc_now
    from skewless.feast.materialize import materialize

    end = utc_now()
    views = materialize(project.feature_store(), end)
    return f"{', '.join(views)} up to {end.isoformat(timespec='seconds')}"


class Watcher:
    """Tells when the files dbt reads changed (by content), once a save has settled."""

    def __init__(self, project: Project):
        from skewless.check.compiles import input_files

        self.project = project
        self._digest = lambda: input_files(project)
        self.seen = self._digest()

    def changed(self) -> bool:
        try:
            now = self._digest()
        except OSError:  # a file replaced while read: look again at the next poll
            return False
        if now == self.seen:
            return False
        time.sleep(POLL_SECONDS)  # an editor may write a file in several steps
        try:
            self.seen = self._digest()
        except OSError:
            self.seen = now
        return True


class DevLoop:
    """The loop over one project; :meth:`cycle` runs the steps once."""

    def __init__(self, project: Project, say: Callable[[str], None] = print):
        self.project = project
        self.say = say
        self.on_served: list[Callable[[], None]] = []

    def cycle(self, steps: tuple[str, ...] = STEPS) -> Cycle:
        """Run ``steps`` of build, check, apply, materialize, serve (tell ``on_served``) in
        that order, stopping at the first that fails."""
        cycle = Cycle()
        work = {
            "build": lambda: build_modified(self.project),
            "check": lambda: check(self.project),
            "apply": lambda: feast_apply(self.project),
            "materialize": lambda: materialize_now(self.project),
            "serve": self._serve,
        }
        try:
            for name in steps:
                cycle.run(name, work[name], self.say)
        except CycleStopped:
            self.say(f"  {cycle.failed}")
            self.say("  nothing new is served; save again to retry")
            return cycle
        if "serve" in steps:
            self.say(f"  served in {cycle.seconds:.1f} s")
        return cycle

    def _serve(self) -> str:
        for callback in self.on_served:
            callback()
        return "the API answers with these definitions"


def pinned_events(project: Project):
    """The API's event store for fresh features: the built DuckDB file as the last successful
    cycle left it, not followed (a build writes the file in place, and a failed one must not
    reach the API); None (the server's default) when ``$SKEWLESS_EVENT_STORE`` names another."""
    from skewless.serving.event_store import EVENT_STORE_ENV, DuckDBEvents

    if os.environ.get(EVENT_STORE_ENV):
        return None
    return DuckDBEvents(project.duckdb_path, project.root, follow=False)


class SwappableApp:
    """An ASGI app that forwards each request to the API over the current server, swapped for
    a new one after each good cycle."""

    def __init__(self, server):
        from skewless.serving.http_api import create_app

        self._create = create_app
        self.server, self.app = server, create_app(server)

    def swap(self, server) -> None:
        """Serve ``server`` from the next request on; stop and close the previous one."""
        old_app, old = self.app, self.server
        self.server, self.app = server, self._create(server)
        old_app.state.stop()
        old.close()

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


def say(text: str) -> None:
    print(text, flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_dev(project: Project, host: str, port: int) -> int:
    """Serve ``project`` and run the loop on every save until interrupted."""
    import uvicorn

    from skewless.serving.http_api import startup_line
    from skewless.serving.server import FeatureServer

    if not project.manifest.exists():
        print(
            f"skewless dev: {project.manifest} not found: run `skewless build` first",
            file=sys.stderr,
        )
        return 2
    save_state(project)
    watcher = Watcher(project)  # before the start-up: a save during it starts a cycle
    loop = DevLoop(project, say)
    say("starting: the project as built is checked, applied and materialized")
    loop.cycle(("check", "apply", "materialize"))  # dbt, Feast and the check warm up here

    def new_server() -> FeatureServer:
        return FeatureServer(project, events=pinned_events(project))

    try:
        server = new_server()
    except Exception as exc:  # noqa: BLE001 - e.g. nothing registered: say it, do not trace
        print(f"skewless dev: cannot serve: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    holder = SwappableApp(server)
    api = uvicorn.Server(
        uvicorn.Config(holder, host=host, port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=api.run, name="skewless-dev-api", daemon=True)
    thread.start()
    while not api.started:  # say nothing before the API answers
        if not thread.is_alive():
            print(f"skewless dev: cannot serve on {host}:{port}", file=sys.stderr)
            return 2
        time.sleep(0.05)
    loop.on_served.append(lambda: holder.swap(new_server()))
    say(startup_line(server, None, host, port).replace("skewless serve", "skewless dev"))
    say("watching models, macros and yml: save a file to build, check, apply, materialize")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            if watcher.changed():
                say(f"[{time.strftime('%H:%M:%S')}] change seen")
                loop.cycle()
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        api.should_exit = True
        holder.server.close()
    return 0
