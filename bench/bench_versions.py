"""Training env-steps/s of this checkout beside an earlier commit's, in one run on one machine.

Each measurement is a fresh process that builds a run as ``heldout train`` does
(``heldout.trainer.build``, ``heldout.trainer.loop.train_loop``) from a preset plus dotted
settings, trains one warm-up update, then times ``--cycles`` more (rollout + update, the
sampler glue, PAIRED's partner). The earlier commit is checked out once into a temporary git
worktree and imported from there (``PYTHONPATH``); both versions run in this venv. Rounds
alternate the versions so that both see the same machine load; the table shows medians and the
ratio new / old per workload.

Workloads (``--workloads``, comma-separated):

* ``ppo``: maze plain PPO at jaxued's shape (32 envs x 256 steps, 5 epochs, one minibatch);
* ``ppo_lstm``: the same with the recurrent agent (LSTM 256);
* ``paired``: ``--preset paired`` (PAIRED: adversary, protagonist, antagonist);
* ``procgen``: ``--preset procgen`` on coinrun (64 envs x 256 steps, 3 epochs, 8 minibatches).

    python bench/bench_versions.py --base 7e82b97                 # the measurement (quiet machine)
    python bench/bench_versions.py --base HEAD~1 --quick          # tiny sizes: checks the script
    python bench/bench_versions.py --base 27afe66 --new network.precision=bf16   # a setting only the new one has
    python bench/bench_versions.py --base f77ff15 --threads 0 --busy 1           # defaults, one core kept busy
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOADS: dict[str, tuple[str, dict]] = {
    "ppo": ("maze", {"env.num_envs": 32, "ppo.n_steps": 256, "ppo.n_epochs": 5, "ppo.n_minibatches": 1}),
    "ppo_lstm": ("maze", {"agent": "ppo_lstm", "env.num_envs": 32, "ppo.n_steps": 256, "ppo.n_epochs": 5,
                          "ppo.n_minibatches": 1, "network.lstm_hidden_size": 256}),
    "paired": ("paired", {}),
    "procgen": ("procgen", {"env.name": "procgen/coinrun"}),
}  # fmt: skip
QUICK = {"env.num_envs": 4, "ppo.n_steps": 32, "ppo.n_minibatches": 1}

MEASURE = r"""
import json, sys, time
import heldout
from heldout.trainer import config
from heldout.trainer.build import build
from heldout.trainer.loop import train_loop

preset, settings, cycles, threads = json.loads(sys.argv[1])
cfg = config.preset(preset)
for key, value in settings.items():
    config.set_field(cfg, key, value)
cfg.torch_threads = threads
cfg.eval.interval = 0
cfg.checkpoint_interval = 0
cfg.validate()
run = build(cfg)
rollout = cfg.env.num_envs * cfg.ppo.n_steps
run.cfg.steps = rollout
train_loop(run, progress=False)  # warm-up: first allocations, lazy imports
run.cfg.steps = (cycles + 1) * rollout
start = time.perf_counter()
train_loop(run, resume=True, progress=False)
print(json.dumps({"sps": cycles * rollout / (time.perf_counter() - start)}))
"""


def checkout(rev: str, where: Path) -> Path:
    """``rev`` in a detached worktree under ``where``; the directory to put on ``PYTHONPATH``."""
    tree = where / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), rev], check=True)
    (where / "pkg").mkdir()
    (where / "pkg" / "heldout").symlink_to(tree)
    return where / "pkg"


def measure(path: Path | None, workload: str, cycles: int, threads: int, quick: bool, extra: dict) -> float:
    preset, settings = WORKLOADS[workload]
    settings = {**settings, **(QUICK if quick else {}), **extra}
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = f"{path}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(path)
    arg = json.dumps([preset, settings, cycles, threads])
    out = subprocess.run([sys.executable, "-c", MEASURE, arg], env=env, cwd=path or ROOT, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return float(json.loads(out.stdout.strip().splitlines()[-1])["sps"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--workloads", default="ppo,ppo_lstm,paired", help=f"comma-separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians over them)")
    parser.add_argument("--cycles", type=int, default=3, help="timed rollout+update cycles per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of every measurement (0: each version's default)")
    parser.add_argument("--busy", type=int, default=0, help="processes that keep a core busy (a Python spin loop) while measuring")
    parser.add_argument("--quick", action="store_true", help="4 envs x 32 steps, 1 round, 1 cycle: checks the script")
    parser.add_argument("--new", action="append", default=[], metavar="KEY=VALUE",
                        help="a dotted setting for the new version only (repeatable), e.g. network.precision=bf16")
    args = parser.parse_args(argv)
    try:
        new_only = dict(item.split("=", 1) for item in args.new)
    except ValueError:
        parser.error("--new takes KEY=VALUE, e.g. network.precision=bf16")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if args.quick:
        args.rounds, args.cycles = 1, 1
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-versions-") as tmp:
        base_path = checkout(args.base, Path(tmp))
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        try:
            results: dict[str, dict[str, list[float]]] = {w: {"old": [], "new": []} for w in workloads}
            for r in range(args.rounds):
                for w in workloads:
                    for version, path in (("old", base_path), ("new", None)) if r % 2 == 0 else (("new", None), ("old", base_path)):
                        extra = new_only if version == "new" else {}
                        results[w][version].append(measure(path, w, args.cycles, args.threads, args.quick, extra))
                        print(f"  {w} {version}: {results[w][version][-1]:.0f} env-steps/s", file=sys.stderr, flush=True)
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            for spinner in spinners:
                spinner.kill()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / "tree")], check=False)
    print(f"env-steps/s, medians of {args.rounds} alternating round(s), {args.cycles} cycle(s) each, "
          f"{args.threads or 'default'} torch thread(s){f', {args.busy} busy core(s)' if args.busy else ''}; "
          f"old = {args.base}, new = {head} (working tree)" + (f" with {', '.join(args.new)}" if args.new else ""))  # fmt: skip
    print(f"{'workload':<10}{'old':>10}{'new':>10}{'new/old':>9}")
    for w in workloads:
        old, new = statistics.median(results[w]["old"]), statistics.median(results[w]["new"])
        print(f"{w:<10}{old:>10.0f}{new:>10.0f}{new / old:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
