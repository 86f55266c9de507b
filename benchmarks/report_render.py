"""docs/benchmarks.md and its plots from .bench/report.json (see report.py).

Ratios are always "how many times faster bluebroker is" (the peer's time over ours, or our
rate over the peer's), so that above 1 reads the same way in every row; where a peer has no
counterpart the row says so rather than inventing one.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def _median(result: dict | None, key: str) -> float | None:
    if not result or "error" in result:
        return None
    value = result.get(key, result.get("extra", {}).get(key))
    if isinstance(value, list):
        return statistics.median(value) if value else None
    return value


def _get(result: dict | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(result, dict):
            return None
        result = result.get(key)
    return result


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _sorted_sizes(results: dict, prefix: str) -> list[int]:
    return sorted(int(k[len(prefix) :]) for k in results if k.startswith(prefix))


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(what, bluebroker, peer, ratio) for the table."""
    out = []

    def add(what, ours, theirs, unit, higher_is_better=False, peer_note="-"):
        if ours is None and theirs is None:
            return  # not measured in this report (a step skipped or failed: listed below)
        if ours is not None and theirs is not None and ours and theirs:
            ratio = f"{(ours / theirs if higher_is_better else theirs / ours):.1f}x"
        else:
            ratio = "-"
        peer = _fmt(theirs, unit) if theirs is not None else peer_note
        out.append((what, _fmt(ours, unit), peer, ratio))

    ours, peer = results.get("ours_events_1000"), results.get("peer_events_1000")
    add(
        "ingest, writer direct (events/s)",
        _median(ours, "ingest_events_per_s"),
        _median(peer, "ingest_events_per_s"),
        "/s",
        True,
    )
    add(
        "`from_uri` → last run → `f0[:5]`",
        _median(ours, "chain_ms"),
        _median(peer, "chain_ms"),
        "ms",
    )
    add(
        "read a 1,000-row stream (xarray)",
        _median(ours, "read_1000_xarray_ms"),
        _median(peer, "read_1000_xarray_ms"),
        "ms",
    )
    add(
        "read a 1,000-row table (pandas)",
        _median(ours, "read_1000_ms"),
        _median(peer, "read_1000_ms"),
        "ms",
    )
    for size in _sorted_sizes(results, "ours_catalog_")[-1:]:
        big = results[f"ours_catalog_{size}"]
        add(
            f"search by scan_id, {size:,} runs",
            _median(big, "search_scan_id_ms"),
            None,
            "ms",
            peer_note="not measured (TiledWriter fills 100,000 runs in hours)",
        )
        add(
            f"newest 100 of {size:,} runs",
            _median(big, "newest_100_ms"),
            None,
            "ms",
            peer_note="not measured",
        )
    for catalog in ("sqlite", "postgresql"):
        kafka = results.get(f"kafka_{catalog}")
        add(
            f"Kafka → one worker → {catalog} (events/s)",
            _median(kafka, "worker_events_per_s"),
            _median(peer, "ingest_events_per_s"),
            "/s",
            True,
        )
    add(
        "`db[-1].table()` (Databroker 2.0.2 v1 facade)",
        _median(results.get("facade"), "table_ms"),
        _median(results.get("facade_peer"), "table_ms"),
        "ms",
    )
    for n in _sorted_sizes(results, "live_")[-1:]:
        live = results[f"live_{n}"]
        for q in ("p50_ms", "p99_ms"):
            add(
                f"live latency {q[:3]}, {n} subscribers",
                _get(live, "bluebroker", q),
                _get(live, "peer", q),
                "ms",
            )
    directory = results.get("directory")
    if directory and "error" not in directory:
        add(
            "serve directory: registration",
            _get(directory, "bluebroker", "registration_s"),
            _get(directory, "tiled", "registration_s"),
            "s",
        )
        add(
            "serve directory: search p50",
            _get(directory, "bluebroker", "search", "p50_ms"),
            _get(directory, "tiled", "search", "p50_ms"),
            "ms",
        )
        for client in ("httpx", "http.client"):
            add(
                f"HDF5 1000x1000 slice over HTTP ({client})",
                _get(directory, "bluebroker", "slice_1000x1000", client, "p50_ms"),
                _get(directory, "tiled", "slice_1000x1000", client, "p50_ms"),
                "ms",
            )
        add(
            "the same slice with h5py in-process (the limit)",
            _get(directory, "h5py_direct_slice", "defaults", "p50_ms"),
            None,
            "ms",
            peer_note="",
        )
    web = results.get("web")
    for view, label in (
        ("run_list", "web page: first paint, run list"),
        ("image", "web page: first paint, 1080x1280 frame"),
    ):
        add(
            label, _get(web, view, "bluebroker_median_ms"), _get(web, view, "tiled_median_ms"), "ms"
        )
    for key in sorted(k for k in results if k.startswith("memory_")):
        mem = results[key]
        add(
            f"ingest worker RSS growth, 10 % → end of a {int(key[7:]):,}-event run",
            _get(mem, "growth_after_10pct_mb"),
            None,
            "MB",
            peer_note="",
        )
    return out


def plots(results: dict, folder: Path) -> list[tuple[str, str]]:
    """PNG files of how each measure grows with the work; (file name, caption)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = []

    def save(fig, name, caption):
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append((name, caption))

    sizes = _sorted_sizes(results, "ours_events_")
    if sizes:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, key, title in (
            (axes[0], "chain_ms", "from_uri → last run → f0[:5]"),
            (axes[1], "read_1000_xarray_ms", "read the whole stream"),
        ):
            for side, label in (("ours", "bluebroker"), ("peer", "Tiled 0.2 + TiledWriter")):
                xs = [n for n in sizes if _median(results.get(f"{side}_events_{n}"), key)]
                ys = [_median(results[f"{side}_events_{n}"], key) for n in xs]
                if xs:
                    ax.plot(xs, ys, "o-", label=label)
            ax.set(xscale="log", yscale="log", xlabel="events per run", ylabel="ms", title=title)
            ax.legend()
        save(fig, "events_per_run.png", "Reads as runs get longer (median ms, log scales).")
    sizes = _sorted_sizes(results, "ours_catalog_")
    if sizes:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for key, label in (
            ("search_scan_id_ms", "search by scan_id"),
            ("newest_100_ms", "newest 100 runs"),
        ):
            ax.plot(
                sizes,
                [_median(results[f"ours_catalog_{n}"], key) for n in sizes],
                "o-",
                label=label,
            )
        ax.set(xscale="log", xlabel="runs in the catalog", ylabel="ms", title="bluebroker search")
        ax.set_ylim(bottom=0)
        ax.legend()
        save(fig, "catalog_size.png", "Search latency as the catalog grows (median ms).")
    sizes = _sorted_sizes(results, "live_")
    if sizes:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for side, style in (("bluebroker", "-"), ("peer", "--")):
            for q in ("p50_ms", "p99_ms"):
                ys = [_get(results[f"live_{n}"], side, q) for n in sizes]
                if all(y is not None for y in ys):
                    ax.plot(sizes, ys, "o" + style, label=f"{side} {q[:3]}")
        ax.set(xlabel="subscribers", ylabel="ms", yscale="log", title="live latency")
        ax.legend()
        save(fig, "subscribers.png", "Publisher → subscriber callback latency (p50, p99).")
    for key in sorted(k for k in results if k.startswith("memory_")):
        samples = _get(results[key], "samples")
        if not samples:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.plot([s[2] for s in samples], [s[1] for s in samples])
        ax.set(xlabel="events written", ylabel="worker RSS (MB)", title="ingest worker memory")
        ax.set_ylim(bottom=0)
        save(fig, f"{key}.png", "An ingest worker's resident memory over one long run.")
    return made


def render(report: dict, docs: Path) -> Path:
    results = report.get("results", {})
    m = report.get("machine", {})
    load = ", ".join(f"{x:.1f}" for x in m.get("load_average_at_start", []))
    lines = [
        "# Benchmarks",
        "",
        "Made by `benchmarks/report.py` (see benchmarks/README.md): every benchmark side by "
        "side with the peers in one run, on one machine. **Ratio** is how many times faster "
        "bluebroker is (the peer's time over ours, or our rate over the peer's).",
        "",
        f"Taken {m.get('when', '?')} on {m.get('cpus', '?')} CPUs ({m.get('platform', '?')}, "
        f"Python {m.get('python', '?')}), load average at start {load or '?'}"
        + (" — the quick sweeps." if report.get("quick") else "."),
        "Client, servers and peers share the machine; times vary with its load, ratios much less."
        + (f" {m['note']}" if m.get("note") else ""),
        "",
        "| measure | bluebroker | peer | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(results)]
    failed = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    if failed:
        lines += [
            "",
            "Steps that did not finish: "
            + "; ".join(f"`{k}`: {v}" for k, v in sorted(failed.items()))
            + ".",
        ]
    lines += [
        "",
        "Peers: Tiled 0.2.20 with bluesky-tiled-plugins 2.0.x (TiledWriter), "
        "Databroker 2.0.2's v1 facade over Tiled; the live peer is Tiled's websocket "
        "streaming fed by TiledWriter.",
        "",
    ]
    for name, caption in plots(results, docs / "benchmarks"):
        lines += [f"![{caption}](benchmarks/{name})", "", caption, ""]
    path = docs / "benchmarks.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
