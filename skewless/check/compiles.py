"""The compiles `skewless check` reads, redone only for what changed since the last check.

Each render mode (``portable``, ``online``) is compiled by dbt in this process (``dbtRunner``;
the compiled SQL comes from its result objects) into its own target folder,
``target/skewless/<mode>/``, always with the same target, profile and vars, so dbt's partial
parsing (``partial_parse.msgpack`` there) stays valid between checks. ``compiled.json`` there
keeps every model's compiled SQL and what it was compiled from:

- nothing dbt reads changed (:func:`input_files`, the settings of :func:`settings_key`): dbt
  is not run at all (not even imported);
- some files changed: dbt compiles ``state:modified+`` against ``state/manifest.json`` (the
  manifest of the last full compile): the models whose SQL, yml, config or macros changed since
  then, and everything downstream of them, as dbt itself decides, plus every model compiled
  since the last full compile (``dirty``: it may have changed back to what the state holds);
  every other model's SQL is reused. No manifest is written (``--no-write-json``): writing it
  costs more than the compile;
- no state, or the settings changed (dbt version, the vars given, ``dbt_project.yml``,
  ``profiles.yml``, ``packages.yml``, the ``DBT_*`` and ``SKEWLESS_*`` environment, which
  dbt's state comparison does not see): every model is compiled and the state saved.

The online SQL files (``target/online_sql``) are rewritten only for views whose online compiled
SQL, yml spec or renderer changed, or whose files were edited by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import yaml

from skewless.manifest import ProjectSpec, load_project
from skewless.online_sql import COMPILE_TARGET, DIALECTS, MODES_DIR, OUT_DIR, header, render
from skewless.project import Project, node_results

MODES = ("portable", "online")
COMPILED_FILE = "compiled.json"
"""Per mode: ``{"settings": .., "files": .., "models": {name: compiled SQL}, "dirty": [names
compiled since the last full compile]}``."""
STATE_DIR = "state"
RENDERED_FILE = ".rendered.json"
"""In target/online_sql: view name -> [hash of what its files were rendered from, hash of
the files]."""
SETTINGS_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
PATH_KEYS = (
    "model-paths",
    "macro-paths",
    "seed-paths",
    "test-paths",
    "snapshot-paths",
    "analysis-paths",
)
SELECT = "resource_type:model,path:models"


@dataclass
class CompileSummary:
    """What one check's compiles did: models compiled per mode out of how many, views
    rendered out of how many, and the seconds taken."""

    compiled: dict[str, int] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)
    rendered: int = 0
    views: int = 0
    seconds: float = 0.0

    def reused(self) -> list[str]:
        """What was reused, in words (for the check's one ``reused`` line)."""
        out = [
            f"{self.models[m] - self.compiled[m]} of {self.models[m]} compiled models ({m})"
            for m in self.compiled
        ]
        return out + [f"{self.views - self.rendered} of {self.views} online queries"]

    def line(self) -> str:
        """One line saying what was compiled and how long it took."""
        parts = [f"{self.compiled[m]} of {self.models[m]} models ({m})" for m in self.compiled]
        return (
            f"compiled {', '.join(parts)} and rendered {self.rendered} of {self.views} "
            f"online queries in {self.seconds:.1f} s"
        )


def digest(*parts: str) -> str:
    """A short stable hash of ``parts`` (cache keys)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def settings_key(project: Project, mode: str, dbt_vars: dict) -> str:
    """What a compile depends on that dbt's ``state:modified`` does not compare."""
    files = []
    for name in SETTINGS_FILES:
        path = project.root / name
        files.append(path.read_text() if path.exists() else "")
    profiles = Path(project.env()["DBT_PROFILES_DIR"]) / "profiles.yml"
    files.append(profiles.read_text() if profiles.exists() else "")
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(("DBT_", "SKEWLESS_")))
    return digest(
        version("dbt-core"), mode, json.dumps([dbt_vars, env], sort_keys=True, default=str), *files
    )


def input_files(project: Project) -> str:
    """A hash of every file dbt reads to compile (the folders dbt_project.yml names, and
    dbt_packages): contents of SQL and yml, size and modification time of anything else."""
    config = yaml.safe_load((project.root / "dbt_project.yml").read_text()) or {}
    folders = {"dbt_packages"}
    for key in PATH_KEYS:
        folders.update(config.get(key) or [])
    parts = []
    for folder in sorted(folders):
        for path in sorted((project.root / folder).rglob("*")):
            if not path.is_file():
                continue
            rel = str(path.relative_to(project.root))
            if path.suffix in (".sql", ".yml", ".yaml", ".md", ".py", ".jinja"):
                parts.append(f"{rel}\n{path.read_bytes().hex()}")
            else:
                stat = path.stat()
                parts.append(f"{rel}\n{stat.st_size}\n{stat.st_mtime_ns}")
    return digest(*parts)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def compile_mode_incremental(project: Project, mode: str, dbt_vars: dict) -> tuple[int, int]:
    """Bring ``target/skewless/<mode>/compiled.json`` up to date with the project; returns
    (models compiled now, models known). Raises ``StepFailed`` when dbt fails (what was saved
    is then left as it was, so the next check compiles the same models again)."""
    target = project.root / MODES_DIR / mode
    state = target / STATE_DIR / "manifest.json"
    settings, files = settings_key(project, mode, dbt_vars), input_files(project)
    cached = _read_json(target / COMPILED_FILE)
    incremental = cached.get("settings") == settings and state.exists()
    models = dict(cached.get("models") or {}) if incremental else {}
    dirty = sorted(cached.get("dirty") or []) if incremental else []
    if incremental and cached.get("files") == files:
        return 0, len(models)
    args = ["compile", "--target", COMPILE_TARGET, "--target-path", str(target)]
    args += ["--vars", json.dumps({**dbt_vars, "skewless_mode": mode}, sort_keys=True)]
    args += ["--indirect-selection", "empty"]
    if incremental:  # changed since the state, or compiled since it (maybe changed back)
        args += ["--select", f"state:modified+,{SELECT}", *dirty, "--state", str(state.parent)]
        args += ["--no-write-json"]
    else:
        args += ["--select", SELECT]
    result = project.dbt_in_process(*args, quiet=True)
    fresh = {
        r.node.name: r.node.compiled_code
        for r in node_results(result)
        if getattr(r.node, "resource_type", None) == "model" and r.node.compiled_code
    }
    if not incremental:
        state.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target / "manifest.json", state)
    existing = {  # models of the last full compile whose file is still there, and new ones
        n["name"]
        for n in _read_json(state).get("nodes", {}).values()
        if n.get("resource_type") == "model"
        and (project.root / n.get("original_file_path", "")).exists()
    }
    models = {k: v for k, v in {**models, **fresh}.items() if k in existing or k in fresh}
    dirty = sorted((set(dirty) | set(fresh)) & set(models)) if incremental else []
    _write_json(
        target / COMPILED_FILE,
        {"settings": settings, "files": files, "models": models, "dirty": dirty},
    )
    return len(fresh), len(models)


def compiled_sql(project: Project, mode: str) -> dict[str, str]:
    """Model name -> compiled SQL in render ``mode``, as the last check's compile left it."""
    path = project.root / MODES_DIR / mode / COMPILED_FILE
    models = _read_json(path).get("models")
    if not isinstance(models, dict):
        raise FileNotFoundError(f"{path} not found: run `skewless check` without --no-compile")
    return models


def _files_digest(paths: list[Path]) -> str:
    """A hash of the files' contents ('' when one is missing): a file edited or deleted by hand
    since it was rendered is rendered again."""
    try:
        return digest(*(p.read_text() for p in paths))
    except OSError:
        return ""


def render_changed(project: Project, spec: ProjectSpec, online: dict[str, str]) -> int:
    """Write target/online_sql/<dialect>/<view>.sql for each view whose online compiled SQL,
    spec or renderer changed since it was last written (or whose files are missing); returns
    how many views were rendered."""
    import skewless.online_sql as renderer

    out = project.root / OUT_DIR
    done = _read_json(out / RENDERED_FILE)
    code = digest(Path(renderer.__file__).read_text())
    rendered, keys = 0, {}
    for name, view in spec.feature_views.items():
        if name not in online:
            raise FileNotFoundError(f"feature view '{name}' was not compiled (is it enabled?)")
        source = digest(code, repr(view), online[name])
        paths = [out / d / f"{name}.sql" for d in DIALECTS]
        if done.get(name) == [source, _files_digest(paths)]:
            keys[name] = done[name]
            continue
        query = render(view, online[name])
        for dialect, sql in query.sql.items():
            path = out / dialect / f"{name}.sql"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(header(view, dialect) + sql + ";\n")
        keys[name] = [source, _files_digest(paths)]
        rendered += 1
    _write_json(out / RENDERED_FILE, keys)
    return rendered


def compile_for_check(project: Project, dbt_vars: str | None = None) -> CompileSummary:
    """The portable and online compiles and the online SQL files, redone for what changed."""
    start = time.perf_counter()
    extra = yaml.safe_load(dbt_vars) if dbt_vars else {}
    if not isinstance(extra, dict):
        raise ValueError(f"--vars must be a mapping, got {dbt_vars!r}")
    summary = CompileSummary()
    for mode in MODES:
        summary.compiled[mode], summary.models[mode] = compile_mode_incremental(
            project, mode, extra
        )
    spec = load_project(project.root)
    summary.views = len(spec.feature_views)
    summary.rendered = render_changed(project, spec, compiled_sql(project, "online"))
    summary.seconds = time.perf_counter() - start
    return summary


def write_online_sql(project: Project) -> list[str]:
    """``skewless online-sql``: the online compile, redone for what changed (the same compile
    and files `skewless check` uses), and target/online_sql/<dialect>/<view>.sql up to date for
    every view; the views' names."""
    compile_mode_incremental(project, "online", {})
    spec = load_project(project.root)
    render_changed(project, spec, compiled_sql(project, "online"))
    return list(spec.feature_views)
