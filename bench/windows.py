"""Spine-anchored windows: skewless `window_aggregates` vs a raw ASOF JOIN and a naive range join.

Data (generated once into bench/.cache): 10M events over 100k entities and a 1M-row spine;
3 windows (1d, 7d, 30d) x 4 aggregates (count, sum, avg, max). The unit of cost is one raw
DuckDB ASOF JOIN of the spine against the events. The call is also timed in its two parts:
`windows_running` without max (every aggregate reads running totals: one ASOF JOIN for every
instant and window start) and `windows_max` with max alone (RANGE frames over the instants
merged into the events); the values of both are checked equal to the full call's. The naive
formulation (LEFT JOIN events in the widest window, GROUP BY spine row) runs on a 10x smaller
spine over the same events, and its time is extrapolated linearly (x10); its rows are checked
equal to ours on that sample.

Usage: .venv/bin/python bench/windows.py [--entities 100000 --events 10000000 --spine 1000000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, Clock, build_views, cached, line, run_worker  # noqa: E402

WINDOWS = {"1d": 1, "7d": 7, "30d": 30}
SAMPLE_EVERY = 10
PARTS = {
    "ours": "windows",
    "ours_running": "windows_running",
    "ours_max": "windows_max",
}  # worker -> bench model


def generate(cache: Path, entities: int, events: int, spine: int) -> None:
    import duckdb

    con = duckdb.connect()
    cached(
        cache / "events.parquet",
        lambda p: con.execute(
            f"""
        copy (select (hash(i, 1) % {entities})::bigint as k,
                     timestamp '2026-01-01' + """
            f"""to_seconds((hash(i, 2) % (180 * 86400))::bigint) as ts,
                     (hash(i, 3) % 1000)::bigint as amount
              from range({events}) t(i)) to '{p}' (format parquet)"""
        ),
    )
    cached(
        cache / "spine.parquet",
        lambda p: con.execute(f"""
        copy (select i::bigint as rid, (hash(i, 7) % {entities})::bigint as k,
                     timestamp '2026-01-15' + to_seconds((hash(i, 8) % (180 * 86400))::bigint) as t
              from range({spine}) t(i)) to '{p}' (format parquet)"""),
    )


def naive_sql(cache: Path) -> str:
    widest = max(WINDOWS.values())
    cols = []
    for label, days in WINDOWS.items():
        inside = f"e.ts > s.t - interval {days} days"
        cols += [
            f"count(e.ts) filter (where {inside}) as n_{label}",
            f"coalesce(sum(e.amount) filter (where {inside}), 0) as total_{label}",
            f"avg(e.amount) filter (where {inside}) as mean_{label}",
            f"max(e.amount) filter (where {inside}) as hi_{label}",
        ]
    return f"""
        select s.rid, s.k, s.t, {", ".join(cols)}
        from (select * from read_parquet('{cache}/spine.parquet') where rid % {SAMPLE_EVERY} = 0) s
        left join read_parquet('{cache}/events.parquet') e
          on e.k = s.k and e.ts <= s.t and e.ts > s.t - interval {widest} days
        group by s.rid, s.k, s.t"""


def worker(name: str, cache: Path) -> None:
    import duckdb
    import pyarrow.parquet as pq

    if name in PARTS:
        con = duckdb.connect(str(cache / "bench.duckdb"), read_only=True)
        with Clock() as clock:
            table = con.sql(f"select * from {PARTS[name]}").to_arrow_table()
    elif name == "raw_asof":
        con = duckdb.connect()
        with Clock() as clock:
            table = con.sql(f"""
                select s.rid, s.k, s.t, e.amount from read_parquet('{cache}/spine.parquet') s
                asof left join read_parquet('{cache}/events.parquet') e on s.k = e.k and e.ts <= s.t
            """).to_arrow_table()
    else:  # naive range join on the sample
        con = duckdb.connect()
        with Clock() as clock:
            table = con.sql(naive_sql(cache)).to_arrow_table()
    pq.write_table(table, cache / f"out_windows_{name}.parquet")
    clock.report(rows=table.num_rows)


def compare(cache: Path) -> None:
    import duckdb

    exact = [f"n.{a}_{w} is distinct from o.{a}_{w}" for w in WINDOWS for a in ("n", "total", "hi")]
    close = [
        f"coalesce(abs(n.mean_{w} - o.mean_{w}) > 1e-9, "
        f"(n.mean_{w} is null) <> (o.mean_{w} is null))"
        for w in WINDOWS
    ]
    bad = (
        duckdb.connect()
        .sql(f"""
        select count(*) from read_parquet('{cache}/out_windows_naive.parquet') n
        left join read_parquet('{cache}/out_windows_ours.parquet') o using (rid)
        where o.rid is null or {" or ".join(exact + close)}""")
        .fetchall()[0][0]
    )
    line("naive_vs_ours_differing_rows", bad)
    if bad:
        raise SystemExit(
            f"window_aggregates differs from the naive range join on {bad} sampled rows"
        )
    for part, aggregates in (("running", ("n", "total", "mean")), ("max", ("hi",))):
        n = _differing(
            cache,
            "ours",
            f"ours_{part}",
            ", ".join(f"{a}_{w}" for w in WINDOWS for a in aggregates),
        )
        line(f"{part}_vs_ours_differing_rows", n)
        if n:
            raise SystemExit(
                f"window_aggregates with only its {part} aggregates differs from the full call "
                f"on {n} rows"
            )


def _differing(cache: Path, a: str, b: str, columns: str) -> int:
    """Rows (rid + ``columns``) of out_windows_<a> and out_windows_<b> not in the other."""
    import duckdb

    x, y = (
        f"(select rid, {columns} from read_parquet('{cache}/out_windows_{n}.parquet'))"
        for n in (a, b)
    )
    return (
        duckdb.connect()
        .sql(f"select count(*) from (({x} except all {y}) union all ({y} except all {x}))")
        .fetchall()[0][0]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the median counts")
    parser.add_argument("--worker")
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    cache = args.cache or CACHE / f"windows_{args.entities}_{args.events}_{args.spine}"
    if args.worker:
        return worker(args.worker, cache)
    cache.mkdir(parents=True, exist_ok=True)
    generate(cache, args.entities, args.events, args.spine)
    build_views(cache, " ".join(f"+{model}" for model in PARTS.values()))
    line("events", args.events)
    line("spine_rows", args.spine)
    results = {}
    for name in ("raw_asof", *PARTS, "naive"):
        results[name] = run_worker(Path(__file__), name, "--cache", str(cache), repeat=args.repeat)
        line(f"windows_{name}_seconds", results[name]["seconds"])
        line(f"windows_{name}_peak_rss_mb", results[name]["rss_mb"])
    compare(cache)
    line("windows_vs_raw_asof_ratio", results["ours"]["seconds"] / results["raw_asof"]["seconds"])
    line(
        "windows_count_sum_avg_vs_raw_asof_ratio",
        results["ours_running"]["seconds"] / results["raw_asof"]["seconds"],
    )
    line(
        "windows_max_vs_raw_asof_ratio",
        results["ours_max"]["seconds"] / results["raw_asof"]["seconds"],
    )
    naive_full = results["naive"]["seconds"] * SAMPLE_EVERY
    line("naive_range_join_extrapolated_seconds", naive_full)
    line("naive_extrapolated_vs_windows_ratio", naive_full / results["ours"]["seconds"])


if __name__ == "__main__":
    main()
