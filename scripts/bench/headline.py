#!/usr/bin/env python3
"""Prints the headline tables of bench/README.md from the JSON the benchmark binaries wrote under
bench/results/, so that refreshing the README after a run is a copy and paste. A benchmark whose
JSON is missing is skipped with a note. Standard library only.

usage: headline.py [RESULTS_DIR]   (default: bench/results next to this repository's scripts/)
"""
import json
import pathlib
import statistics
import sys

HEADLINE_SIZES = ["64", "1420", "IMIX"]


def load(results, name):
    path = results / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        print(f"_{name}: no results ({e})_\n")
        return None


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_rate(mpps, gbps):
    if mpps is None or gbps is None:
        return "-"
    return f"{mpps:.2f} / {gbps:.1f}" if mpps >= 0.1 else f"{mpps:.3f} / {gbps:.2f}"


def throughput_headline(rows, mpps_key, gbps_key, mpps_scale):
    """Suite × tunnels rows with encrypt/decrypt at the headline sizes."""
    cells = {}
    order = []
    for r in rows:
        key = (r["suite"], r["tunnels"])
        if key not in cells:
            cells[key] = {}
            order.append(key)
        mpps = r.get(mpps_key)
        cells[key][(r["frame_bytes"], r["direction"])] = fmt_rate(
            None if mpps is None else mpps * mpps_scale, r.get(gbps_key)
        )
    headers = ["suite", "tunnels"] + [
        f"{size} B {d}" if size != "IMIX" else f"IMIX {d}"
        for size in HEADLINE_SIZES
        for d in ("enc", "dec")
    ]
    out = []
    for suite, tunnels in order:
        c = cells[(suite, tunnels)]
        out.append(
            [suite, f"{tunnels:,}"]
            + [
                c.get((size, way), "-")
                for size in HEADLINE_SIZES
                for way in ("encrypt", "decrypt")
            ]
        )
    return table(headers, out)


def ratio_range(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{min(values):.3f}–{max(values):.3f}"


def pktgen(results):
    data = load(results, "pktgen")
    if not data:
        return
    print(f"### pktgen ({data.get('mode')} mode): Mpps / Gbps per core, process_burst only\n")
    print(throughput_headline(data["rows"], "packets_per_second_per_core", "gbps_per_core", 1e-6))
    ceiling = data.get("io_ceiling", {}).get("per_size", [])
    if ceiling:
        print()
        print(
            table(
                ["frame B"] + [c["frame_bytes"] for c in ceiling],
                [
                    ["testpmd io, net_null, Mpps per CPU-s"]
                    + [
                        "-" if c["mpps_per_cpu_second"] is None else f"{c['mpps_per_cpu_second']:.1f}"
                        for c in ceiling
                    ]
                ],
            )
        )
    ratios = [r.get("gateway_over_testpmd") for r in data["rows"]]
    print(f"\ngateway ÷ testpmd io (net_null), all rows: {ratio_range(ratios)}\n")


def pktgen_ports(results):
    data = load(results, "pktgen_ports")
    if not data:
        return
    print(
        f"### pktgen_ports ({data.get('mode')} mode): Mpps / Gbps per worker CPU-second, "
        "whole worker loop through net_ring ports\n"
    )
    print(
        throughput_headline(
            data["rows"], "mpps_per_worker_cpu_second", "gbps_per_worker_cpu_second", 1.0
        )
    )
    ceilings = [c for c in data["io_ceiling"]["mpps_per_cpu_second"] if c is not None]
    if ceilings:
        print(
            f"\ntestpmd io on net_ring (same run, {len(ceilings)} measurements): median "
            f"{statistics.median(ceilings):.0f} Mpps per CPU-s; gateway ÷ testpmd, all rows: "
            f"{ratio_range([r.get('gateway_over_testpmd') for r in data['rows']])}"
        )
    pressure = [r["backpressure"] for r in data["rows"]]
    print(f"generator back-pressure (worker-bound when near 100 %): {min(pressure):.0%}–{max(pressure):.0%}\n")


def ike_rate(results):
    data = load(results, "ike_rate")
    if not data:
        return
    print(f"### ike_rate ({data.get('mode')} mode, {data.get('window')} in flight)\n")
    rows = [
        [
            r["dh_group"],
            r["description"],
            f"{r['tunnels_completed']:,} / {r['tunnels_counted_by_responder']:,}",
            f"{r['tunnels_per_second_wall']:.0f}",
            f"{r['responder_cpu_seconds_per_1000_tunnels']:.3f}",
            f"{r['tunnels_per_responder_cpu_second']:.0f}",
            "-" if r["responder"] == "dyntun" or r["dyntun_over_this"] is None
            else f"**{r['dyntun_over_this']:.2f}×**",
        ]
        for r in data["rows"]
    ]
    print(
        table(
            [
                "DH group",
                "responder",
                "tunnels up (generator / responder)",
                "tunnels/s (wall)",
                "responder CPU-s per 1,000 tunnels",
                "tunnels per responder CPU-s",
                "dyntun ÷ this",
            ],
            rows,
        )
    )
    print()


def ike_setup(results):
    data = load(results, "ike_setup")
    if not data:
        return
    print(f"### ike_setup ({data.get('mode')} mode, in process, responder only)\n")
    rows = [
        [
            c["dh_group"],
            f"{c['tunnels']:,}",
            f"{c['responder_tunnels_per_cpu_second']:.0f}",
            f"{c['control_cpu_seconds_per_1000_tunnels']:.2f}",
        ]
        for c in data["cases"]
    ]
    print(
        table(
            ["DH group", "tunnels", "tunnels per control-thread CPU-s", "CPU-s per 1,000 tunnels"],
            rows,
        )
    )
    print()


def main():
    default = pathlib.Path(__file__).resolve().parents[2] / "bench" / "results"
    results = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default
    pktgen(results)
    pktgen_ports(results)
    ike_rate(results)
    ike_setup(results)


if __name__ == "__main__":
    main()
