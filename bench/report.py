#!/usr/bin/python3
"""The whole latency/throughput report against the peers, in one command:

    bench/report.py [--build build] [--rounds 5] [--scale 1.0]

Runs bench/latency (built by meson into <build>/bench/latency) for every system in interleaved
rounds (round 1: every system once, then round 2, ...), with a progress line on stderr, and writes
  bench/results/raw.json       every run: per round and payload, p50/p99/p99.9/max/mean RTT, msgs/s
  bench/results/summary.json   per system and payload, the median over the rounds
  bench/results/report.md      the tables (medians, with the min-max spread of the p50 over rounds)
  bench/results/latency.png, bench/results/throughput.png
--scale multiplies every sample count (0.05 for a smoke run).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SYSTEMS = [
    "multiproc Queue",
    "multiproc Queue loan",
    "multiproc SpscRing",
    "multiproc SpscRing loan",
    "iceoryx",
    "zeromq ipc PAIR",
    "zeromq ipc PUSH/PULL",
    "posix mq",
    "pipe",
    "socketpair",
    "boost message_queue",
]
PAYLOADS = [8, 64, 1024, 65536, 1048576, 4194304]
METRICS = ["rtt_p50_ns", "rtt_p99_ns", "rtt_p999_ns", "msgs_per_s"]
HERE = os.path.dirname(os.path.abspath(__file__))


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def run_all(binary, rounds, scale, systems, payloads):
    raw = []
    total = rounds * len(systems)
    started = time.monotonic()
    done = 0
    for round_index in range(rounds):
        for system in systems:
            elapsed = time.monotonic() - started
            eta = elapsed / done * (total - done) if done else 0
            print(f"\r[{done + 1}/{total}] round {round_index + 1}/{rounds}: {system:<24} "
                  f"elapsed {elapsed:5.0f} s, left ~{eta:4.0f} s   ", end="", file=sys.stderr, flush=True)
            result = subprocess.run(
                [binary, "--system", system, "--payloads", ",".join(map(str, payloads)),
                 "--round", str(round_index), "--scale", str(scale)],
                capture_output=True, text=True, timeout=600)
            for line in result.stdout.splitlines():
                raw.append(json.loads(line))
            if result.returncode != 0:
                print(f"\n{system}: exit {result.returncode}: {result.stderr.strip()}", file=sys.stderr)
            done += 1
    print(file=sys.stderr)
    return raw


def summarise(raw):
    summary, spread = [], {}
    for system in dict.fromkeys(r["system"] for r in raw):
        for payload in sorted({r["payload_bytes"] for r in raw if r["system"] == system}):
            runs = [r for r in raw if r["system"] == system and r["payload_bytes"] == payload and "error" not in r]
            if not runs:
                continue
            entry = {"system": system, "payload_bytes": payload}
            for metric in METRICS:
                entry[metric] = statistics.median(r[metric] for r in runs)
            summary.append(entry)
            p50s = [r["rtt_p50_ns"] for r in runs]
            spread[(system, payload)] = (min(p50s), max(p50s), len(runs), sum(r["samples"] for r in runs),
                                         max(r["rtt_max_ns"] for r in runs))
    return summary, spread


def us(ns):
    return f"{ns / 1000:.2f}" if ns < 10_000 else f"{ns / 1000:,.0f}"


def human_bytes(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"


def human_rate(rate):
    return f"{rate / 1e6:.2f} M" if rate >= 1e5 else f"{rate / 1e3:.1f} k"


def markdown(summary, spread, environment):
    systems = list(dict.fromkeys(s["system"] for s in summary))
    payloads = sorted({s["payload_bytes"] for s in summary})
    by = {(s["system"], s["payload_bytes"]): s for s in summary}
    lines = [f"Measured {environment['date']} on {environment['cpus']} CPUs, ping on CPU 0 and pong on CPU 1, "
             f"{environment['rounds']} interleaved rounds; medians over the rounds. "
             f"Load average before {environment['load_before']}, after {environment['load_after']}.", ""]

    def table(title, cell):
        lines.append(f"**{title}**")
        lines.append("")
        lines.append("| system | " + " | ".join(human_bytes(p) for p in payloads) + " |")
        lines.append("|---" * (len(payloads) + 1) + "|")
        for system in systems:
            row = [cell(system, payload) if (system, payload) in by else "—" for payload in payloads]
            lines.append(f"| {system} | " + " | ".join(row) + " |")
        lines.append("")

    table("Round trip p50, microseconds (min–max of the rounds' p50)",
          lambda s, p: f"{us(by[s, p]['rtt_p50_ns'])} ({us(spread[s, p][0])}–{us(spread[s, p][1])})")
    table("Round trip p99, microseconds", lambda s, p: us(by[s, p]["rtt_p99_ns"]))
    table("Round trip p99.9, microseconds", lambda s, p: us(by[s, p]["rtt_p999_ns"]))
    table("Round trip max (worst of the rounds), microseconds", lambda s, p: us(spread[s, p][4]))
    table("Throughput, messages/s", lambda s, p: human_rate(by[s, p]["msgs_per_s"]))
    table("Samples (all rounds)", lambda s, p: f"{spread[s, p][3]:,}")
    return "\n".join(lines)


def goals(summary):
    """The issue's goals, as ratios from this one run (medians over the rounds)."""
    by = {(s["system"], s["payload_bytes"]): s for s in summary}

    def value(system, payload, metric):
        entry = by.get((system, payload))
        return entry[metric] if entry else None

    def best(systems, payload, metric, pick):
        values = [v for v in (value(s, payload, metric) for s in systems) if v is not None]
        return pick(values) if values else None

    zeromq = ["zeromq ipc PAIR", "zeromq ipc PUSH/PULL"]
    queue_p50 = value("multiproc Queue", 8, "rtt_p50_ns")
    queue_p99 = value("multiproc Queue", 8, "rtt_p99_ns")
    queue_rate = value("multiproc Queue", 8, "msgs_per_s")
    rows = []

    def goal(text, ratio, limit, higher_is_better):
        if ratio is None:
            rows.append(f"| {text} | not measured | |")
            return
        met = ratio >= limit if higher_is_better else ratio <= limit
        rows.append(f"| {text} | {ratio:.2f} | {'met' if met else 'NOT met'} |")

    def ratio(a, b):
        return a / b if a is not None and b else None

    goal("Queue p50 at 8 B / iceoryx p50 (<= 1)", ratio(queue_p50, value("iceoryx", 8, "rtt_p50_ns")), 1, False)
    goal("faster ZeroMQ ipc p50 at 8 B / Queue p50 (>= 5)", ratio(best(zeromq, 8, "rtt_p50_ns", min), queue_p50), 5, True)
    goal("Queue p99 / p50 at 8 B (<= 2)", ratio(queue_p99, queue_p50), 2, False)
    goal("Queue msgs/s at 8 B / Boost message_queue (>= 5)",
         ratio(queue_rate, value("boost message_queue", 8, "msgs_per_s")), 5, True)
    goal("Queue msgs/s at 8 B / faster ZeroMQ ipc (>= 3)", ratio(queue_rate, best(zeromq, 8, "msgs_per_s", max)), 3, True)
    loan = "multiproc SpscRing loan"
    for payload, name in [(1048576, "1 MiB"), (4194304, "4 MiB")]:
        goal(f"loan p50 at {name} / iceoryx p50 at {name} (<= 1.5)",
             ratio(value(loan, payload, "rtt_p50_ns"), value("iceoryx", payload, "rtt_p50_ns")), 1.5, False)
        goal(f"loan p50 at {name} / loan p50 at 64 B (<= 2)",
             ratio(value(loan, payload, "rtt_p50_ns"), value(loan, 64, "rtt_p50_ns")), 2, False)
    return "\n".join(["**The issue's goals (ratios of this run's medians)**", "", "| goal | ratio | |", "|---|---|---|"] + rows) + "\n"


def plot(summary, directory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    systems = list(dict.fromkeys(s["system"] for s in summary))
    figure, axes = plt.subplots(1, 3, figsize=(18, 6), sharey=True)
    for axis, metric, title in zip(axes, METRICS[:3], ["p50", "p99", "p99.9"]):
        for system in systems:
            points = sorted((s["payload_bytes"], s[metric] / 1000) for s in summary if s["system"] == system)
            axis.plot(*zip(*points), marker="o", label=system)
        axis.set(xscale="log", yscale="log", title=f"round trip {title}", xlabel="payload (bytes)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("microseconds")
    axes[2].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "latency.png"), dpi=90)
    figure, axis = plt.subplots(figsize=(9, 6))
    for system in systems:
        points = sorted((s["payload_bytes"], s["msgs_per_s"]) for s in summary if s["system"] == system)
        axis.plot(*zip(*points), marker="o", label=system)
    axis.set(xscale="log", yscale="log", title="throughput", xlabel="payload (bytes)", ylabel="messages/s")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "throughput.png"), dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--payloads", default=",".join(map(str, PAYLOADS)))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    binary = os.path.join(args.build, "bench", "latency")
    os.makedirs(args.out, exist_ok=True)
    environment = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                   "rounds": args.rounds, "scale": args.scale, "load_before": load_average()}
    raw = run_all(binary, args.rounds, args.scale, args.systems.split(","), [int(p) for p in args.payloads.split(",")])
    environment["load_after"] = load_average()
    summary, spread = summarise(raw)
    with open(os.path.join(args.out, "raw.json"), "w") as f:
        json.dump({"environment": environment, "runs": raw}, f, indent=1)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    table = markdown(summary, spread, environment) + "\n" + goals(summary)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(table + "\n")
    plot(summary, args.out)
    print(table)


if __name__ == "__main__":
    main()
