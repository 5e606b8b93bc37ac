"""``murmur demo``: the bundled real sample, served by local platform servers, followed by the real
sources into a fresh store, then summarised — the whole spine, on one machine, offline."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from murmur.cli.common import err, fail, out, print_table
from murmur.config import Config, parse_config
from murmur.errors import ConfigError, MurmurError, StoreError
from murmur.query.aggregate import grouped_counts, store_stats
from murmur.query.monitors import add_monitor, list_monitors
from murmur.runtime import RuntimeStats
from murmur.service import run_service
from murmur.store import Store, open_reader
from murmur.testing_servers import (
    FeedServer,
    JetstreamReplayServer,
    MastodonServer,
    RedditServer,
    jetstream_events_from_real_records,
    mastodon_statuses_from_real_payloads,
    real_feed_documents,
    reddit_things_from_real_payloads,
)

JETSTREAM_EVENTS = 3000
DEMO_MONITORS = {
    "games": 'game* OR steam OR playstation OR xbox OR "video game"',
    "politics": "election* OR vote* OR president OR congress OR parliament",
    "weather": "storm* OR flood* OR hurricane OR (rain NEAR/3 heavy)",
    "video-links": "site:youtube.com OR site:youtu.be",
}
"""Saved before the sources start, so they are matched live, as posts arrive."""
TIERS = ("firehose", "neural", "none")
IDLE_SECONDS = 2.0
MAX_SECONDS = 120.0


def demo_assets() -> Path:
    return Path(str(resources.files("murmur") / "assets" / "demo"))


def demo_config(workdir: Path, urls: dict[str, Any], tier: str) -> Config:
    return parse_config(
        {
            "store": {"path": str(workdir / "demo.duckdb")},
            # The recorded sample spans 2005-2026: a long retention keeps it for the demo.
            "privacy": {"k": 5, "retention_days": 36500, "public_accounts": ["@WHO"]},
            "enrich": {"tier": tier},
            "sources": [
                {"id": "bluesky", "type": "jetstream", "url": urls["jetstream"], "backoff_initial": 0.2},
                {
                    "id": "mastodon",
                    "type": "mastodon",
                    "base_url": urls["mastodon"],
                    "initial_backfill": 200,
                    "poll_interval": 1,
                    "backoff_initial": 0.2,
                },
                {
                    "id": "reddit",
                    "type": "reddit",
                    "base_url": urls["reddit"],
                    "auth_url": urls["reddit"],
                    "subreddits": ["all"],
                    "listings": ["new", "comments"],
                    "client_id": "murmur-test-client",
                    "client_secret": "murmur-test-secret",
                    "user_agent": "murmur-demo/0.1",
                    "initial_pages": 20,
                    "poll_interval": 1,
                    "backoff_initial": 0.2,
                },
                {"id": "feeds", "type": "feed", "urls": urls["feeds"], "interval": 1},
            ],
        },
        origin="demo",
        env={},
    )


async def follow_until_idle(cfg: Config, on_progress: Any) -> RuntimeStats:
    """Run the service until the sources have been quiet for a moment (they are live, never end)."""
    stop = asyncio.Event()
    last = {"events": -1, "at": time.monotonic()}
    started = time.monotonic()

    def on_batch(stats: RuntimeStats) -> None:
        on_progress(stats)

    async def watchdog(stats_ref: list[RuntimeStats]) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.25)
            if not stats_ref:
                continue
            seen = sum(c.events + c.quarantined for c in stats_ref[0].sources.values())
            now = time.monotonic()
            if seen != last["events"]:
                last.update(events=seen, at=now)
            elif (seen > 0 and now - last["at"] > IDLE_SECONDS) or now - started > MAX_SECONDS:
                stop.set()

    stats_ref: list[RuntimeStats] = []

    def capture(stats: RuntimeStats) -> None:
        if not stats_ref:
            stats_ref.append(stats)
        on_batch(stats)

    task = asyncio.create_task(watchdog(stats_ref))
    try:
        return await run_service(cfg, stop=stop, on_batch=capture, purge_every_seconds=3600)
    finally:
        stop.set()
        await task


def check_workdir(workdir: Path) -> None:
    """Refuse a ``--workdir`` that holds anything but an earlier demo's store: it is deleted and
    recreated, and ``--workdir .`` or ``--workdir ~`` would have deleted a project or a home."""
    if not workdir.exists():
        return
    if not workdir.is_dir():
        msg = f"--workdir {workdir} is not a directory"
        raise StoreError(msg)
    foreign = sorted(p.name for p in workdir.iterdir() if not p.name.startswith("demo.duckdb"))
    if foreign:
        names = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        msg = (
            f"--workdir {workdir} holds other files ({names}); "
            "the demo deletes and recreates its workdir: pass a new or an earlier demo's directory"
        )
        raise StoreError(msg)


def run_demo(workdir: Path, tier: str, *, quiet: bool) -> dict[str, Any]:
    assets = demo_assets()
    if tier not in TIERS:  # before the earlier demo's store is deleted
        msg = f"--tier must be one of {', '.join(TIERS)}, got {tier!r}"
        raise ConfigError(msg)
    check_workdir(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    with ExitStack() as stack:
        jet = stack.enter_context(
            JetstreamReplayServer(
                jetstream_events_from_real_records(
                    JETSTREAM_EVENTS, root=assets, delete_every=60, authors=400
                )
            )
        )
        masto = stack.enter_context(MastodonServer(statuses=mastodon_statuses_from_real_payloads(assets)))
        reddit = stack.enter_context(RedditServer(things=reddit_things_from_real_payloads(root=assets)))
        feeds = stack.enter_context(FeedServer(feeds=real_feed_documents(assets)))
        urls = {"jetstream": jet.url, "mastodon": masto.url, "reddit": reddit.url, "feeds": feeds.urls}
        cfg = demo_config(workdir, urls, tier)
        with Store.open(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
            for name, query in DEMO_MONITORS.items():
                add_monitor(store.conn, name, query, backfill=False)
        if quiet:
            stats = asyncio.run(follow_until_idle(cfg, lambda s: None))
        else:
            with err.status("following the local Bluesky, Mastodon, Reddit and feed servers…") as status:

                def progress(s: RuntimeStats) -> None:
                    status.update(
                        f"following local servers: {s.posts} posts stored, {s.quarantined} quarantined"
                    )

                stats = asyncio.run(follow_until_idle(cfg, progress))
    reader = open_reader(cfg.store.path, memory_limit=cfg.store.memory_limit)
    try:
        summary = store_stats(reader, k=cfg.privacy.k)
        summary["top_hashtags"] = [
            c.as_dict() for c in grouped_counts(reader, ["hashtag"], k=cfg.privacy.k)[:10]
        ]
        summary["top_domains"] = [
            c.as_dict() for c in grouped_counts(reader, ["domain"], k=cfg.privacy.k)[:10]
        ]
        if tier != "none":
            summary["by_sentiment"] = [
                c.as_dict() for c in grouped_counts(reader, ["sentiment"], k=cfg.privacy.k)
            ]
        summary["monitors"] = [
            {"monitor": m.monitor_id, "posts": m.matches, "suppressed": m.matches is None}
            for m in list_monitors(reader, k=cfg.privacy.k)
        ]
    finally:
        reader.close()
    summary["run"] = stats.as_dict()
    summary["store"] = cfg.store.path
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    run = summary["run"]
    out.print(
        f"\n[bold]murmur demo[/]: {summary['posts']} posts in {summary['store']} "
        f"({run['deletions']} platform deletions applied, {summary['quarantined']} payloads quarantined)"
    )
    out.print(f"Counts are k-anonymous: a cell backed by fewer than k={summary['k']} authors is suppressed.")
    sources = Table(title="sources, followed over WebSocket / HTTP on loopback")
    for col in ("source", "events", "quarantined", "cursor"):
        sources.add_column(col)
    for sid, c in sorted(run["sources"].items()):
        if c["events"] or c["quarantined"]:
            sources.add_row(sid, str(c["events"]), str(c["quarantined"]), str(c["position"])[:40])
    print_table(sources)
    for title, key, dim in (
        ("by platform", "by_platform", "platform"),
        ("by language", "by_language", "lang"),
        ("by sentiment", "by_sentiment", "sentiment"),
        ("top hashtags", "top_hashtags", "hashtag"),
        ("top link domains", "top_domains", "domain"),
        ("live monitors", "monitors", "monitor"),
    ):
        rows = summary.get(key)
        if not rows:
            continue
        table = Table(title=title, min_width=36)
        table.add_column(dim)
        table.add_column("posts", justify="right")
        for row in rows[:12]:
            if row.get("hidden"):
                table.add_row(f"[dim]{row['hidden']} more under k[/]", "suppressed")
                continue
            table.add_row(str(row[dim]), "suppressed" if row["suppressed"] else str(row["posts"]))
        print_table(table)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        workdir: Annotated[Path, typer.Option(help="Where the demo store goes (recreated).")] = Path(
            "var/demo"
        ),
        tier: Annotated[str, typer.Option(help="Enrichment tier: firehose, neural or none.")] = "firehose",
        json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Replay the bundled real sample through local platform servers into a fresh store."""
        try:
            summary = run_demo(workdir, tier, quiet=json_out or not sys.stderr.isatty())
        except MurmurError as exc:
            raise fail(exc) from None
        if json_out:
            sys.stdout.write(orjson.dumps(summary, default=str).decode() + "\n")
        else:
            print_summary(summary)
