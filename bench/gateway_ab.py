"""Builds of the gateway side by side at concurrency 1, against one backend.

Each source tree named on the command line (a checkout or a `git worktree` of another commit)
runs as its own gateway process, its `libs`, `services` and `gateway` first on the import
path, in front of the same stub backend (about 2 KB of JSON from a kit service that verifies
tokens). wrk then goes round the targets, direct first, one run each per round, so that every
build meets the same drift of a shared machine; `--bare` adds the bare transport proxy of
`bench/forwarding_bench.py` as a floor. Prints each round, then per target the medians of
p50, of the per-round added p50, of requests/s and of the target's CPU time per request.

    git worktree add /tmp/before HEAD~1
    .venv/bin/python bench/gateway_ab.py /tmp/before . [--bare] [--rounds 14] [--duration 2]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.forwarding_bench import measure, start_proxy
from bench.gateway_bench import ADMIN_KEY, SERVE, added_p50, median, stub_run


def run(trees: list[Path], bare: bool, rounds: int, duration: int) -> None:
    with stub_run("qrp-bench-ab-") as bench:
        processes, workdir, env = bench.processes, bench.workdir, bench.env
        token, backend = bench.token, bench.backend
        for name in ("BRAND_REGISTRY", "CERTIFICATION", "INSPECTION", "ASSESSMENT"):
            env[f"GATEWAY_{name}_URL"] = (
                backend if name == "BRAND_REGISTRY" else "http://127.0.0.1:9"
            )
        targets = {"direct": (backend, "Authorization: " + token)}
        for number, tree in enumerate(trees, start=1):
            label = f"{number}:{tree.name or tree}"
            tree_env = dict(
                env,
                PYTHONPATH=os.pathsep.join(str(tree / part) for part in ("libs", "services", "")),
                GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / f'gateway-{number}.db'}",
            )
            command = [str(tree / SERVE), "gateway", "gateway.app:build_app"]
            url = processes.start(f"gateway-{number}", command, tree_env, workdir)
            targets[label] = (url, f"X-API-Key: {ADMIN_KEY}")
        if bare:
            url = start_proxy(
                processes,
                env,
                workdir,
                name="bare",
                transport="upstream",
                backend=backend,
                token=token,
            )
            targets["bare proxy"] = (url, "Authorization: " + token)
        for url, header in targets.values():
            measure(url, header, 16, 1)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for number in range(1, rounds + 1):
            for name, (url, header) in targets.items():
                results[name].append(measure(url, header, 1, duration))
            print(
                f"round {number:>2}: "
                + " | ".join(f"{name} {runs[-1]['p50']:.3f} ms" for name, runs in results.items()),
                flush=True,
            )
        report(results)


def report(results: dict[str, list[dict[str, float]]]) -> None:
    direct = results["direct"]
    print(f"{'target':<24} {'p50':>9} {'added p50':>10} {'rps':>7} {'CPU/request':>12}")
    for name, runs in results.items():
        p50, rps, cpu = (median(runs, key) for key in ("p50", "rps", "cpu_us"))
        added_text = "" if name == "direct" else f"{added_p50(runs, direct):.3f} ms"
        print(f"{name:<24} {p50:>6.3f} ms {added_text:>10} {rps:>7.0f} {cpu:>9.0f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("trees", nargs="+", type=Path, help="source trees, one gateway each")
    parser.add_argument("--bare", action="store_true", help="add the bare transport proxy")
    parser.add_argument("--rounds", type=int, default=14, help="rounds over all targets")
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run")
    arguments = parser.parse_args()
    run(
        [tree.resolve() for tree in arguments.trees],
        arguments.bare,
        arguments.rounds,
        arguments.duration,
    )
