"""On paper: one major incident with 10 updates, told to 10,000 communities on 3 platforms.

Pure computation, no I/O: how long until every channel shows the latest state, per platform,
and how many worker processes that takes. The inputs are measured or documented:

- CPU per delivery: bench/results/scale.json (bench/scale.py, one process, no rate limit), or
  ``--cpu-ms`` (a first post) and ``--update-cpu-ms`` (an edit or a thread reply; both go
  through the fast lane, `bot.delivery.fast_lane`). One process sends at most 1 / CPU per
  second on a free core, and at most ``concurrency / rtt`` per second (the worker keeps 16
  requests in flight per process).
- Discord: 50 requests/s per bot token, all processes together (the sender keeps 3 of headroom:
  47/s), and 5 messages per 5 s per channel (https://docs.discord.com/developers/topics/rate-limits;
  support-dev.discord.com "My Bot is Being Rate Limited": "50 requests per second").
- Slack: limits apply "per API method per workspace per app" (https://docs.slack.dev/apis/web-api/
  rate-limits): chat.postMessage about 1 message per second per channel plus a workspace-wide
  limit; chat.update is assumed Tier 3 (50+ per minute per workspace). Each workspace has its
  own budget, so 4,000 workspaces do not share one ceiling; one workspace with many channels
  does.
- Outgoing webhooks: no platform ceiling (each receiver is its own server).

What an update costs (bot/store/alert_store.py, bot/delivery): the incident's opening is one
post per channel; each later update is an edit and a thread reply per chat channel, and one
document per webhook (its thread reply costs no request). An edit whose alert has moved on
renders the newest version, so when updates arrive faster than they are sent, the later edits
cost nothing (`DeliveryAttempts.process`: "a later edit did it"); thread replies all go out.

Two cases: **spaced** (updates further apart than a wave takes: each update's wave alone) and
**burst** (all 10 updates staged at once, e.g. after the worker was down: the posts, then the
first edit wave shows the newest state; the 9 thread replies follow).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from _common import RESULTS, write_result

NAME = "incident_fanout_sim"
DISCORD_PER_S = 47.0  # bot/adapters/discord/sender.py GLOBAL_RATE_PER_SECOND (50 minus headroom)
SLACK_UPDATES_PER_MIN = 50.0  # chat.update, Tier 3, per workspace
SLACK_POSTS_PER_S_PER_CHANNEL = 1.0  # chat.postMessage, per channel
TARGET_S = 60.0  # every Slack and webhook channel shows an update within a minute


@dataclass(frozen=True, slots=True)
class Load:
    """Requests one wave sends, per platform."""

    discord: float
    slack: float
    webhooks: float

    @property
    def total(self) -> float:
        return self.discord + self.slack + self.webhooks


def wave_seconds(load: Load, processes: int, per_process: float) -> dict[str, float]:
    """Seconds until each platform's part of a wave is sent. Discord is capped at its global
    ceiling; Slack and webhooks share what the processes have left while Discord is paced."""
    capacity = processes * per_process
    discord_rate = min(DISCORD_PER_S, capacity)
    discord_s = load.discord / discord_rate if load.discord else 0.0
    others = load.slack + load.webhooks
    spare = capacity - (discord_rate if load.discord else 0.0)
    if others <= spare * discord_s:
        others_s = others / spare if others else 0.0
    else:
        others_s = discord_s + (others - spare * discord_s) / capacity
    return {"discord": discord_s, "slack_and_webhooks": others_s}


def slack_workspace_floor(channels_per_workspace: int, updates: int) -> float:
    """Seconds one Slack workspace needs for a wave of `updates` edits per channel and one
    post per channel, whatever our capacity: its own per-workspace budget."""
    edits = channels_per_workspace * updates / (SLACK_UPDATES_PER_MIN / 60)
    return max(edits, updates / SLACK_POSTS_PER_S_PER_CHANNEL)


def per_process_rate(cpu_ms: float, concurrency: int, rtt_s: float) -> dict[str, float]:
    cpu_bound = 1000.0 / cpu_ms
    network_bound = concurrency / rtt_s
    return {"cpu_bound": cpu_bound, "network_bound": network_bound}


def processes_for(load: Load, per_process: float, target_s: float) -> int:
    """The fewest processes with which Slack and webhooks finish a wave within `target_s`."""
    processes = 1
    while wave_seconds(load, processes, per_process)["slack_and_webhooks"] > target_s:
        processes += 1
    return processes


def measured_cpu_ms(figure: str) -> float | None:
    """A CPU-per-delivery figure of one process from the last bench/scale.py run (PostgreSQL
    first): ``cpu_ms_per_delivery`` (first posts) or ``update_cpu_ms_per_delivery``."""
    path = RESULTS / "scale.json"
    if not path.exists():
        return None
    figures = json.loads(path.read_text())["figures"]
    for database in ("postgres", "sqlite"):
        if f"{database}_w1_{figure}" in figures:
            return float(figures[f"{database}_w1_{figure}"])
    return None


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    post_ms = args.cpu_ms or measured_cpu_ms("cpu_ms_per_delivery") or 0.75
    update_ms = args.update_cpu_ms or measured_cpu_ms("update_cpu_ms_per_delivery") or 0.9
    communities = args.communities
    discord = round(communities * args.discord_share)
    webhooks = round(communities * args.webhook_share)
    slack = communities - discord - webhooks
    opening = Load(discord, slack, webhooks)
    update = Load(2 * discord, 2 * slack, webhooks)  # edit + thread reply; one webhook document
    # Burst: the posts, then the first edit wave (newest state) with its thread replies.
    latest = Load(3 * discord, 3 * slack, 2 * webhooks)
    everything = Load(11 * discord, 11 * slack, 2 * webhooks)

    def rate(load: Load, *, posts: float, cpu_bound_only: bool = False) -> float:
        """Per process, for a wave of `posts` first posts and the rest edits and replies."""
        cpu_ms = (posts * post_ms + (load.total - posts) * update_ms) / load.total
        rates = per_process_rate(cpu_ms, args.concurrency, args.rtt)
        return rates["cpu_bound"] if cpu_bound_only else min(rates.values())

    figures: dict[str, Any] = {
        "communities": communities,
        "channels": {"discord": discord, "slack": slack, "webhooks": webhooks},
        "cpu_ms_per_first_post": post_ms,
        "cpu_ms_per_edit_or_reply": update_ms,
        "rtt_s": args.rtt,
        "concurrency_per_process": args.concurrency,
        "per_process_per_s": {
            "first_posts": {
                k: round(v, 1)
                for k, v in per_process_rate(post_ms, args.concurrency, args.rtt).items()
            },
            "updates": {
                k: round(v, 1)
                for k, v in per_process_rate(update_ms, args.concurrency, args.rtt).items()
            },
        },
        "requests_per_incident": {
            "discord": opening.discord + 9 * update.discord,
            "slack": opening.slack + 9 * update.slack,
            "webhooks": opening.webhooks + 9 * update.webhooks,
        },
    }
    for processes in args.processes:
        spaced = {
            "opening": wave_seconds(opening, processes, rate(opening, posts=opening.total)),
            "each_update": wave_seconds(update, processes, rate(update, posts=0)),
        }
        burst = {
            "latest_state": wave_seconds(latest, processes, rate(latest, posts=opening.total)),
            "all_thread_replies": wave_seconds(
                everything, processes, rate(everything, posts=opening.total)
            ),
        }
        figures[f"p{processes}"] = {
            case: {wave: {k: round(v, 1) for k, v in s.items()} for wave, s in waves.items()}
            for case, waves in (("spaced", spaced), ("burst", burst))
        }
    figures["processes_for_60s_update_wave"] = processes_for(
        update, rate(update, posts=0), TARGET_S
    )
    figures["processes_for_60s_update_wave_cpu_bound"] = processes_for(
        update, rate(update, posts=0, cpu_bound_only=True), TARGET_S
    )
    figures["discord_update_wave_s_any_processes"] = round(update.discord / DISCORD_PER_S, 1)
    figures["slack_workspace_floor_s"] = {
        str(n): round(slack_workspace_floor(n, 1), 1) for n in (1, 10, 50)
    }
    return figures


def report(figures: dict[str, Any], processes: list[int]) -> None:
    channels = figures["channels"]
    print(
        f"{figures['communities']:,} communities: {channels['discord']:,} Discord, "
        f"{channels['slack']:,} Slack, {channels['webhooks']:,} webhooks; one channel each"
    )
    for wave, rates in figures["per_process_per_s"].items():
        print(
            f"one process, {wave.replace('_', ' ')}: {rates['cpu_bound']}/s on CPU, "
            f"{rates['network_bound']}/s in flight ({figures['concurrency_per_process']} at "
            f"{figures['rtt_s']} s round trip)"
        )
    print(f"{'processes':>9}  {'case':<7}{'wave':<20}{'Discord s':>10}{'Slack+webhooks s':>18}")
    for p in processes:
        for case, waves in figures[f"p{p}"].items():
            for wave, seconds in waves.items():
                print(
                    f"{p:>9}  {case:<7}{wave:<20}{seconds['discord']:>10}"
                    f"{seconds['slack_and_webhooks']:>18}"
                )
    print(
        f"Discord: {figures['discord_update_wave_s_any_processes']} s per update wave whatever "
        f"the process count (one bot token, 47/s). Slack workspace floor for one update "
        f"(1 / 10 / 50 channels per workspace): {figures['slack_workspace_floor_s']} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--communities", type=int, default=10_000)
    parser.add_argument("--discord-share", type=float, default=0.5)
    parser.add_argument("--webhook-share", type=float, default=0.1, help="the rest is Slack")
    parser.add_argument("--cpu-ms", type=float, help="CPU per first post (default: scale.json)")
    parser.add_argument("--update-cpu-ms", type=float, help="per edit or reply (scale.json)")
    parser.add_argument("--rtt", type=float, default=0.15, help="platform round trip, seconds")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--processes", default="1,2,4", help="process counts to show")
    parser.add_argument("--quick", action="store_true", help="the same (it is instant)")
    args = parser.parse_args()
    args.processes = [int(n) for n in args.processes.split(",")]
    figures = simulate(args)
    report(figures, args.processes)
    needed = figures["processes_for_60s_update_wave"]
    targets = {"slack_and_webhooks_update_wave_s_max": TARGET_S, "processes_needed_max": 4}
    write_result(NAME, figures, targets, needed <= targets["processes_needed_max"])
    print(
        f"incident_fanout_sim: every Slack and webhook channel shows an update within "
        f"{TARGET_S:.0f} s with {needed} process(es) "
        f"({figures['processes_for_60s_update_wave_cpu_bound']} if only CPU counted); "
        f"Discord takes {figures['discord_update_wave_s_any_processes']} s per update at its "
        f"ceiling"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
