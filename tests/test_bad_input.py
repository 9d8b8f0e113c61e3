"""Bad input fails the build with a message naming the model, column or value; nothing is
silently dropped or coerced. Each case runs real dbt on a fresh copy of the project."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
from contextlib import contextmanager

import pytest
from conftest import copy_project

from skewless.project import StepFailed
from support.servers import postgres_server


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "skewless")


def _append(path, line: str) -> None:
    with path.open("a") as fh:
        fh.write(line + "\n")


def test_unparseable_timestamp_fails_staging_naming_model_and_value(project):
    _append(project.root / "seeds" / "raw_emails.csv", "99999999,1,next tuesday,nurture,,")
    project.dbt("seed", "-s", "raw_emails")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "stg_crm__emails")
    assert "stg_crm__emails" in str(err.value) and "next tuesday" in str(err.value)


def test_conflicting_duplicate_fails_instead_of_picking_one(project):
    """Two versions of a lead written at the same instant with different values: an error."""
    seeds = project.root / "seeds" / "raw_leads.csv"
    first = seeds.read_text().splitlines()[1].split(",")
    first[3] = str(int(first[3]) + 1)  # same lead, same timestamps, another company_size
    _append(seeds, ",".join(first))
    project.dbt("seed", "-s", "raw_leads")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "stg_crm__leads")
    assert "unique_rows_stg_crm__leads_lead_id__updated_at" in str(err.value)


def test_spine_without_join_key_is_a_compile_error_naming_it(project):
    training = project.root / "models" / "training"
    (training / "conversions_spine.sql").write_text(
        "{{ config(contract={'enforced': false}) }}\n"
        "{{ skewless.asof_join(spine=ref('stg_crm__conversions'), spine_ts='converted_at',\n"
        "                      feature_views=[ref('lead_profile')]) }}\n"
    )
    (training / "keyless_spine.sql").write_text(
        "{{ config(contract={'enforced': false}) }}\n"
        "{{ skewless.asof_join(spine=ref('stg_crm__dropped_rows'), spine_ts='raw_table',\n"
        "                      feature_views=[ref('lead_profile')]) }}\n"
    )
    project.dbt("seed")
    project.dbt("run", "-s", "+lead_profile", "+stg_crm__dropped_rows", "+stg_crm__conversions")
    with pytest.raises(StepFailed) as err:
        project.dbt("run", "-s", "keyless_spine")
    message = str(err.value)
    assert "has no column 'lead_id'" in message and "lead_profile" in message
    project.dbt("run", "-s", "conversions_spine")  # a spine with the key builds


def test_hugeint_sum_is_rejected_by_the_contract(project):
    """DuckDB SUM(BIGINT) is HUGEINT (it would become DOUBLE in parquet): the contract says no."""
    model = project.root / "models" / "features" / "lead_activity.sql"
    model.write_text(model.read_text().replace(", 'type': 'bigint'}", "}"))
    project.dbt("seed")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "+lead_activity")
    message = str(err.value)
    assert "lead_activity" in message and "contract" in message.lower() and "pages_" in message


# -- raw exports: a clear error naming the file, before dbt reads it ----------------------------

RAW_EMAILS_HEADER = "email_id,lead_id,sent_at,kind\n"


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty (0 bytes)"),
        (
            RAW_EMAILS_HEADER.encode()
            + b"1,1,2026-03-06 04:39:32,nurture\n2,1,2026-03-0\xff,nurture\n",
            "not UTF-8: byte 0xff at line 3, column 14",
        ),
        (b"email_id,sent_at,kind\n1,2026-03-06 04:39:32,nurture\n", "has no column 'lead_id'"),
        (
            b"email_id,lead_id,lead_id,sent_at,kind\n1,1,1,2026-03-06,nurture\n",
            "names column 'lead_id' more than once",
        ),
        (RAW_EMAILS_HEADER.encode(), "has a header but no rows"),
        (
            RAW_EMAILS_HEADER.encode() + b"1,1,2026-03-06 04:39:32,nurture\n2,1,2026-03\n",
            "line 3 has 3 fields, the header has 4",
        ),
        (
            RAW_EMAILS_HEADER.encode() + b"1,1,2026-03-06 04:39:32,nurture\n2,1,2026-03-06 04:3",
            "line 3 does not end with a newline",
        ),
        (
            RAW_EMAILS_HEADER.encode() + b'1,1,2026-03-06 04:39:32,"nurture\n',
            "the row starting at line 2 is malformed",
        ),
    ],
)
def test_broken_raw_export_is_a_clear_error_naming_the_file(tmp_path, content, expected):
    from skewless.raw_exports import RawExportError, check_raw_export

    path = tmp_path / "raw_emails.csv"
    path.write_bytes(content)
    with pytest.raises(RawExportError) as err:
        check_raw_export(path, ["email_id", "lead_id", "sent_at", "kind"])
    assert str(path) in str(err.value) and expected in str(err.value), str(err.value)


def test_shipped_raw_exports_pass_the_check():
    from conftest import REPO

    from skewless.raw_exports import check_raw_exports, declared_exports

    rows = check_raw_exports(REPO)
    assert (
        set(rows)
        == set(declared_exports(REPO))
        == {"raw_leads", "raw_emails", "raw_web_visits", "raw_conversions", "raw_scoring_events"}
    )
    for name, n in rows.items():
        with (REPO / "seeds" / f"{name}.csv").open(newline="") as fh:
            assert n == sum(1 for _ in csv.reader(fh)) - 1, name


@pytest.mark.parametrize("raw", ["raw_emails", "raw_leads"])
def test_skewless_build_refuses_a_header_only_export_without_a_traceback(project, raw, capsys):
    from skewless.cli import main

    seed = project.root / "seeds" / f"{raw}.csv"
    seed.write_text(seed.read_text().splitlines()[0] + "\n")
    assert main(["build", "--project-dir", str(project.root)]) == 2
    err = capsys.readouterr().err
    assert f"{raw}.csv: the export has a header but no rows" in err and "Traceback" not in err
    assert not project.duckdb_path.exists()  # nothing was published


# -- staging parses exactly, and drops and records what it cannot keep --------------------------


def exact_integer(text: str, bits: int = 64) -> int | None:
    """The oracle: ASCII digits with an optional sign, surrounding spaces ignored, in range."""
    stripped = text.strip(" ")
    if not re.fullmatch(r"[+-]?[0-9]+", stripped):
        return None
    value = int(stripped)
    return value if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else None


def number_texts(n: int, seed: int) -> list[str]:
    """Texts that look more or less like integers: the corners by hand, then random ones."""
    corners = [
        "1.4",
        "249.7",
        "1.0",
        "1e3",
        "0x10",
        "7_000",
        " 7 ",
        "+7",
        "007",
        "-0",
        "0",
        "7 7",
        "\u0663",
        "\uff17",
        "1,5",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "+",
        "-",
        "1-",
        "--1",
        " +12 ",
        "12.",
        ".5",
        "5e0",
        "inf",
        "nan",
        "Infinity",
    ]
    rng = random.Random(seed)
    alphabet = "0123456789" * 3 + "+-. eE_x\u0661"
    generated = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 21))) for _ in range(n)]
    # dbt seed reads an empty or '.'-only cell as NULL: not a text this test is about
    return [t for t in corners + generated if t.strip() not in ("", ".")]


def _write_rows(path, rows: list[list[str]]) -> None:
    """Append rows; a row shorter than the header gets empty (NULL) trailing fields."""
    with path.open(newline="") as fh:
        width = len(next(csv.reader(fh)))
    with path.open("a", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(r + [""] * (width - len(r)) for r in rows)


LENIENT = '{"skewless_max_rejected_fraction": 1}'
STAGING = ["-s", "staging", "--exclude", "test_type:singular"]  # staging and its own tests


def _postgres_rows(pg, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(pg.dsn()) as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres"])
def test_numbers_are_parsed_exactly_on_every_engine(project, engine_name):
    """DuckDB casts '1.4' to 1 and rounds '249.7' to 250: an email would move to another lead.
    Each text as an email's lead_id is kept with exactly its value or rejected with the reason,
    on DuckDB and PostgreSQL alike."""
    texts = number_texts(150, seed=13)
    first_id = 50_000_000
    _write_rows(
        project.root / "seeds" / "raw_emails.csv",
        [
            [str(first_id + i), text, "2026-03-06 04:39:32", "nurture"]
            for i, text in enumerate(texts)
        ],
    )
    kept_sql = f"select email_id, lead_id from stg_crm__emails where email_id >= {first_id}"
    rejected_sql = (
        "select raw_row, reason from stg_crm__rejected_rows where raw_table = 'raw_emails'"
    )
    if engine_name == "duckdb":
        project.dbt("seed")
        project.dbt("build", *STAGING, "--vars", LENIENT)
        with project.connect() as con:
            kept, rejected = con.sql(kept_sql).fetchall(), con.sql(rejected_sql).fetchall()
    else:
        with postgres_server() as pg:
            env = {
                "SKEWLESS_TARGET": "postgres",
                "SKEWLESS_PG_PORT": str(pg.port),
                "SKEWLESS_PG_USER": pg.user,
            }
            with _environ(env):
                project.dbt("seed")
                project.dbt("build", *STAGING, "--vars", LENIENT)
            kept, rejected = _postgres_rows(pg, kept_sql), _postgres_rows(pg, rejected_sql)
    expected_kept, expected_rejected = {}, {}
    for i, text in enumerate(texts):
        value = exact_integer(text)
        if value is None:
            expected_rejected[first_id + i] = "lead_id: not an exact bigint"
        elif value < 1:
            expected_rejected[first_id + i] = "lead_id: below 1"
        else:
            expected_kept[first_id + i] = value
    assert dict(kept) == expected_kept
    assert {int(row.split(",")[0]): reason for row, reason in rejected} == expected_rejected
    assert {"1.4", "249.7"} <= {texts[i - first_id] for i in expected_rejected}


def test_a_column_declared_on_error_fail_fails_the_build_naming_the_value(project):
    spec = project.root / "macros" / "crm_staging.sql"
    declared = "{'name': 'email_id', 'type': 'bigint'}"
    assert declared in spec.read_text()
    spec.write_text(
        spec.read_text().replace(
            declared, "{'name': 'email_id', 'type': 'bigint', 'on_error': 'fail'}"
        )
    )
    _write_rows(
        project.root / "seeds" / "raw_emails.csv", [["12.5", "1", "2026-03-06 04:39:32", "nurture"]]
    )
    project.dbt("seed", "-s", "raw_emails")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "stg_crm__emails")
    assert "stg_crm__emails" in str(err.value)
    assert "email_id: not an exact bigint: 12.5" in str(err.value)


@contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- a load must be complete --------------------------------------------------------------------


def _data_rows(path) -> list[str]:
    return path.read_text().splitlines(keepends=True)[1:]


def _keep_rows(path, n: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 1 + n]))


@pytest.mark.parametrize("raw", ["raw_emails", "raw_leads"])
def test_header_only_export_fails_the_dbt_build_itself(project, raw):
    """Even without `skewless build`'s check, plain `dbt build` fails on an empty export."""
    seed = project.root / "seeds" / f"{raw}.csv"
    seed.write_text(seed.read_text().splitlines()[0] + "\n")
    project.dbt("seed")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", *STAGING)
    assert "load_is_complete_stg_crm__loads" in str(err.value)


def test_truncated_export_fails_against_the_previous_load(project):
    """At most skewless_max_load_shrink (0.5) fewer rows than the previous load: the exact
    boundary passes (next test), one row less fails."""
    seed = project.root / "seeds" / "raw_emails.csv"
    full = len(_data_rows(seed))
    project.dbt("seed")
    project.dbt("build", *STAGING)
    smallest = -(-full // 2)  # ceil(full * 0.5)
    _keep_rows(seed, smallest - 1)
    project.dbt("seed")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", *STAGING)
    assert "load_is_complete_stg_crm__loads" in str(err.value)
    with project.connect() as con:
        loads = con.sql(
            "select raw_rows from stg_crm__loads where raw_table = 'raw_emails' order by built_at"
        ).fetchall()
    assert [n for (n,) in loads] == [full, smallest - 1]  # plain dbt records the failed load


def test_truncated_export_at_the_boundary_passes(project):
    seed = project.root / "seeds" / "raw_emails.csv"
    full = len(_data_rows(seed))
    project.dbt("seed")
    project.dbt("build", *STAGING)
    _keep_rows(seed, -(-full // 2))
    project.dbt("seed")
    project.dbt("build", *STAGING)


def test_exact_duplicate_label_rows_are_removed_and_counted(project):
    """A label row exported twice (its timestamp spelled another way) adds no training row."""
    seed = project.root / "seeds" / "raw_scoring_events.csv"
    rows = _data_rows(seed)
    lead, scored_at, label = rows[0].rstrip("\n").split(",")
    respelled = scored_at.replace(" ", "T") + "Z" if not scored_at.endswith("Z") else scored_at
    _write_rows(seed, [r.rstrip("\n").split(",") for r in rows[1:3]] + [[lead, respelled, label]])
    project.dbt("seed")
    project.dbt(
        "build",
        "-s",
        "+lead_conversion_training",
        "+stg_crm__dropped_rows",
        "--exclude",
        "test_type:singular",
    )
    with project.connect() as con:
        for model in ("stg_crm__scoring_events", "lead_conversion_training"):
            assert con.sql(f"select count(*) from {model}").fetchall()[0][0] == len(rows), model
        dropped = dict(
            con.sql(
                "select raw_table, rows_dropped from stg_crm__dropped_rows "
                "where reason = 'exact duplicate export'"
            ).fetchall()
        )
    assert dropped["raw_scoring_events"] == 3


def test_values_outside_their_domain_are_dropped_and_recorded(project):
    seeds = project.root / "seeds"
    _write_rows(
        seeds / "raw_leads.csv",
        [
            ["900001", "2026-03-01 00:00:00", "2026-03-01 00:00:00", "0", "retail", "30"],
            ["900002", "2026-03-01 00:00:00", "2026-03-01 00:00:00", "-4", "retail", "30"],
            ["900003", "2026-03-01 00:00:00", "2026-03-01 00:00:00", "12", "retail", "151"],
            ["900004", "2026-03-01 00:00:00", "2026-03-01 00:00:00", "1", "retail", "0"],
        ],
    )
    _write_rows(
        seeds / "raw_web_visits.csv",
        [["900001", "1", "2026-03-01 00:00:00", "-1"], ["900002", "1", "2026-03-01 00:00:00", "0"]],
    )
    project.dbt("seed")
    project.dbt(
        "build",
        "-s",
        "+lead_profile",
        "+lead_activity",
        "stg_crm__rejected_rows",
        "--exclude",
        "test_type:singular",
    )
    with project.connect() as con:
        rejected = sorted(
            con.sql("select raw_table, reason, raw_row from stg_crm__rejected_rows").fetchall()
        )
        kept_leads = {
            r[0]
            for r in con.sql("select lead_id from stg_crm__leads where lead_id > 900000").fetchall()
        }
        kept_visits = {
            r[0]
            for r in con.sql(
                "select visit_id from stg_crm__web_visits where visit_id > 900000"
            ).fetchall()
        }
        non_finite = con.sql(
            "select count(*) from lead_profile where log_company_size is null "
            "or not isfinite(log_company_size)"
        ).fetchall()[0][0]
    assert [(t, reason) for t, reason, _ in rejected] == [
        ("raw_leads", "company_size: below 1"),
        ("raw_leads", "company_size: below 1"),
        ("raw_leads", "contact_age: above 150"),
        ("raw_web_visits", "pages: below 0"),
    ]
    assert rejected[0][2].startswith("900001,") and rejected[3][2].startswith("900001,1,")
    assert kept_leads == {900004} and kept_visits == {900002} and non_finite == 0


def test_future_events_are_quarantined_and_never_move_the_watermark(project):
    """An email dated 2099 changed the window features of 1,100 other leads: events after the
    load time + skewless_max_event_lead are recorded, not used. The horizon is inclusive."""
    seeds = project.root / "seeds"
    load = {"skewless_load_time": "2026-07-01 00:00:00", "skewless_max_event_lead": "1d"}
    project.dbt("seed")
    project.dbt(
        "build",
        "-s",
        "+lead_activity",
        "--exclude",
        "test_type:singular",
        "--vars",
        json.dumps(load),
    )
    with project.connect() as con:
        before = con.sql("select * from lead_activity order by all").fetchall()
    _write_rows(seeds / "raw_emails.csv", [["900001", "1", "2099-01-01 00:00:00", "nurture"]])
    _write_rows(
        seeds / "raw_conversions.csv",
        [
            ["900001", "2026-07-02 00:00:00"],
            ["900002", "2026-07-02T00:00:01Z"],
            ["900003", "2026-07-02T02:00:00+02:00"],
        ],
    )
    project.dbt("seed")
    project.dbt(
        "build",
        "-s",
        "+lead_activity",
        "+stg_crm__conversions",
        "stg_crm__rejected_rows",
        "--exclude",
        "test_type:singular",
        "--vars",
        json.dumps(load),
    )
    with project.connect() as con:
        after = con.sql("select * from lead_activity order by all").fetchall()
        converted = {
            r[0]
            for r in con.sql(
                "select lead_id from stg_crm__conversions where lead_id > 900000"
            ).fetchall()
        }
        rejected = sorted(
            con.sql("select raw_table, reason from stg_crm__rejected_rows").fetchall()
        )
    assert after == before
    assert converted == {900001, 900003}
    assert rejected == [
        ("raw_conversions", "converted_at: after the load horizon"),
        ("raw_emails", "sent_at: after the load horizon"),
    ]


# -- write, audit, then publish -----------------------------------------------------------------


def _published_state(project) -> dict:
    """Everything serving and Feast read, by content."""
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.features_dir.iterdir())
        if p.is_file()
    }
    return {
        "duckdb": hashlib.sha256(project.duckdb_path.read_bytes()).hexdigest(),
        "features": files,
        "published": (project.root / "data" / "published.json").read_text(),
    }


def _fresh_emails(project, lead_id: int) -> int:
    """What a fresh (request-time) email count reads from the published event store."""
    with project.connect() as con:
        return con.execute(
            "select count(*) from stg_crm__emails where lead_id = ?", [lead_id]
        ).fetchall()[0][0]


def test_a_failed_build_publishes_nothing(project, capsys):
    """A conflicting email_id fails the unique test after stg_crm__emails was rebuilt: what
    serving reads (staged tables, feature parquet, manifest) must not change."""
    from skewless.cli import main

    assert main(["build", "--project-dir", str(project.root)]) == 0
    assert project.features_dir.is_symlink()
    assert len(list(project.features_dir.glob("*.parquet"))) == 4
    before, fresh = _published_state(project), _fresh_emails(project, 999)
    manifest = project.manifest.read_bytes()
    first = _data_rows(project.root / "seeds" / "raw_emails.csv")[0].split(",")
    _write_rows(
        project.root / "seeds" / "raw_emails.csv",
        [[first[0], "999", "2026-06-29 00:00:00", "nurture"]],
    )
    capsys.readouterr()
    assert main(["build", "--project-dir", str(project.root)]) == 2
    err = capsys.readouterr().err
    assert "unique_stg_crm__emails_email_id" in err and "nothing was published" in err
    assert "Traceback" not in err
    assert _published_state(project) == before and project.manifest.read_bytes() == manifest
    assert _fresh_emails(project, 999) == fresh


def test_a_green_build_publishes_atomically_and_keeps_the_load_record(project):
    from skewless.publish import KEEP_BUILDS, build_and_publish, published_build

    builds = [build_and_publish(project, say=lambda line: None) for _ in range(KEEP_BUILDS + 1)]
    assert published_build(project.root) == builds[-1].build_id
    assert os.readlink(project.features_dir) == f".builds/{builds[-1].build_id}/features"
    with project.connect() as con:
        loads = con.sql("select count(distinct load_id) from stg_crm__loads").fetchall()[0][0]
        assert con.sql("select count(*) from lead_profile").fetchall()[0][0] > 0
    assert loads == KEEP_BUILDS + 1
    kept = sorted(p.name for p in (project.root / "data" / ".builds").iterdir() if p.is_dir())
    assert kept == [b.build_id for b in builds[-KEEP_BUILDS:]]


def test_an_empty_feature_view_is_a_parquet_file_with_no_rows(project):
    """dbt-duckdb writes an empty model as one all-NULL row; Feast would read it."""
    import pyarrow.parquet as pq

    features = project.root / "models" / "features"
    (features / "empty_profile.sql").write_text(
        "{{ config(contract={'enforced': false}) }}\n"
        "select * from {{ ref('lead_profile') }} where lead_id < 0\n"
    )
    project.dbt("seed")
    project.dbt("build", "-s", "+empty_profile", "--exclude", "test_type:singular")
    table = pq.read_table(project.features_dir / "empty_profile.parquet")
    profile = pq.read_table(project.features_dir / "lead_profile.parquet")
    assert table.num_rows == 0 and table.schema.names == profile.schema.names
    with project.connect() as con:
        assert con.sql("select count(*) from empty_profile").fetchall()[0][0] == 0
