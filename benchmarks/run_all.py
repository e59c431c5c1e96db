"""Run every benchmark, each in a fresh interpreter, and print their Markdown tables.

Run: ``python benchmarks/run_all.py`` (from anywhere; no install needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from _common import ROOT, machine

SCRIPTS = (
    "bench_read.py",
    "bench_single_flight.py",
    "bench_refresh.py",
    "bench_memory.py",
    "bench_http.py",
    "bench_etcd_propagation.py",  # needs the etcd binary (apt-get install etcd-server)
    "bench_flags.py",
    "bench_layers.py",
    "bench_loop_stall.py",
    "bench_startup.py",
    "bench_azure.py",
    "bench_sync_close.py",
)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    print(f"# aioconfig benchmarks\n\nMachine: {machine()}\n", flush=True)
    failed: list[str] = []
    for script in SCRIPTS:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, os.path.join(here, script)], cwd=ROOT, check=False)
        print(f"\n({script}: {time.perf_counter() - start:.1f} s)\n", flush=True)
        if done.returncode != 0:
            failed.append(script)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
