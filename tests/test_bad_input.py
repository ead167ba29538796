"""The bad-input census: every case a clear one-line error, exit code 2, no traceback, nothing written.

Each row is (id, argv, setup, needle). ``argv`` may name ``{tmp}`` (the case's scratch
directory, also the working directory), ``{run}`` (a fresh copy of a tiny trained maze run)
and ``{new}`` (a run directory that does not exist yet). ``setup`` prepares files in the
scratch directory or the run copy. The error must be the only line on stderr, name the problem
(``needle``), start with ``heldout <command>: error:``, and stdout must stay empty (a rejected
run must not look as if it started); afterwards every file under the scratch directory, the
run copy included, is byte for byte as before.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heldout.cli import main

FAST = [
    "--env", "maze", "--env.num_envs", "4", "--ppo.n_steps", "32", "--ppo.n_minibatches", "2",
    "--ppo.n_epochs", "1", "--eval.episodes", "2", "--eval.final_episodes", "2", "--eval.num_envs", "2",
    "--torch_threads", "1", "--no-progress", "--steps", "128",
]  # fmt: skip
TRAIN = ["train", *FAST, "--run-dir", "{new}"]

SOLVABLE = "#####\n#>.G#\n#####"
UNSOLVABLE = "#####\n#>#G#\n#####"


# -- setups ----------------------------------------------------------------------------------------
def write(name: str, content: str | bytes):
    def setup(tmp: Path, run: Path, monkeypatch) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def mkdir(name: str):
    return lambda tmp, run, monkeypatch: (tmp / name).mkdir(parents=True)


def unreadable(name: str):
    """A file without read permission (simulated: the tests may run as root, who reads anything)."""

    def setup(tmp: Path, run: Path, monkeypatch) -> None:
        path = tmp / name
        path.write_text("steps: 100\n")
        real = Path.read_bytes

        def read_bytes(self):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)

    return setup


def run_config(change):
    """Edit the run copy's config.yaml (``change`` gets the parsed mapping, returns the new one)."""

    def setup(tmp: Path, run: Path, monkeypatch) -> None:
        data = yaml.safe_load((run / "config.yaml").read_text())
        new = change(data)
        (run / "config.yaml").write_text("" if new is None else yaml.safe_dump(new))

    return setup


def set_key(section: str, key: str, value):
    def change(data):
        data[section][key] = value
        return data

    return run_config(change)


def checkpoint_file(kind: str):
    def setup(tmp: Path, run: Path, monkeypatch) -> None:
        ckpt = run / "checkpoints" / "latest.pt"
        if kind == "missing":
            ckpt.unlink()
        elif kind == "corrupt":
            ckpt.write_bytes(ckpt.read_bytes()[:1000])
        elif kind == "directory":
            ckpt.unlink()
            ckpt.mkdir()
        elif kind == "pickle":
            ckpt.write_bytes(pickle.dumps(RunsCommand(tmp / "pwned")))

    return setup


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def in_run(name: str, content: str):
    """A file in the run copy (e.g. a damaged record)."""
    return lambda tmp, run, monkeypatch: (run / name).write_text(content)


def sparse(name: str, size: int):
    """A file of ``size`` bytes that takes no disk (zeros)."""

    def setup(tmp: Path, run: Path, monkeypatch) -> None:
        with open(tmp / name, "wb") as f:
            f.truncate(size)

    return setup


def both(*setups):
    def setup(tmp, run, monkeypatch):
        for s in setups:
            s(tmp, run, monkeypatch)

    return setup


def nothing(tmp, run, monkeypatch):
    pass


HELD: list = []
"""Locks held for a case (as by a live run in another process); released when the next case holds one."""


def hold_lock(name: str):
    def setup(tmp: Path, run: Path, monkeypatch) -> None:
        from heldout.trainer.lock import DirectoryLock

        while HELD:
            HELD.pop().__exit__(None, None, None)
        HELD.append(DirectoryLock(tmp / name).__enter__())

    return setup


# -- the census ------------------------------------------------------------------------------------
CASES = [
    # numbers on the command line
    ("steps-1e999", [*TRAIN, "--steps", "1e999"], nothing, "bad value for steps"),
    ("steps-fraction", [*TRAIN, "--steps", "4000.5e0"], nothing, "not a fraction"),
    ("steps-1e30", [*TRAIN, "--steps", "1e30"], nothing, "bad value for steps"),
    ("steps-word", [*TRAIN, "--steps", "many"], nothing, "bad value for steps"),
    ("steps-true", [*TRAIN, "--steps", "true"], nothing, "bad value for steps"),
    ("steps-negative", [*TRAIN, "--steps", "-10"], nothing, "steps"),
    ("steps-zero", [*TRAIN, "--steps", "0"], nothing, "steps"),
    ("seed-negative", [*TRAIN, "--seed", "-1"], nothing, "seed=-1"),
    ("seed-too-big", [*TRAIN, "--seed", "99999999999"], nothing, "seed="),
    ("lr-word", [*TRAIN, "--ppo.lr", "fast"], nothing, "ppo.lr"),
    ("lr-inf", [*TRAIN, "--ppo.lr", "inf"], nothing, "ppo.lr"),
    ("lr-negative", [*TRAIN, "--ppo.lr", "-1"], nothing, "lr"),
    ("num-envs-zero", [*TRAIN, "--env.num_envs", "0"], nothing, "env.num_envs"),
    ("train-levels-zero", [*TRAIN, "--train-levels", "0"], nothing, "env.num_train_levels"),
    ("train-levels-huge", [*TRAIN, "--train-levels", "100000000"], nothing, "num_train_levels"),
    ("level-seed-negative", [*TRAIN, "--env.level_seed", "-3"], nothing, "env.level_seed"),
    ("eval-episodes-zero", [*TRAIN, "--eval.episodes", "0"], nothing, "eval.episodes"),
    ("deterministic-maybe", [*TRAIN, "--eval.deterministic", "maybe"], nothing, "eval.deterministic"),
    ("checkpoint-interval-negative", [*TRAIN, "--checkpoint_interval", "-1"], nothing, "checkpoint_interval"),
    ("torch-threads-negative", [*TRAIN, "--torch_threads", "-1"], nothing, "torch_threads"),
    ("impala-channels-words", [*TRAIN, "--network.impala_channels", "a,b"], nothing, "network.impala_channels"),
    ("device-tpu", [*TRAIN, "--device", "tpu"], nothing, "device"),
    # names
    ("env-unknown", [*TRAIN, "--env", "mazee"], nothing, "unknown environment 'mazee'"),
    ("sampler-unknown", [*TRAIN, "--sampler", "nope"], nothing, "unknown level sampler 'nope'"),
    ("agent-unknown", [*TRAIN, "--agent", "dqn"], nothing, "unknown agent 'dqn'"),
    ("sampler-score-unknown", [*TRAIN, "--sampler", "plr", "--sampler.params", "{score: nope}"], nothing, "nope"),
    ("sampler-param-unknown", [*TRAIN, "--sampler", "plr", "--sampler.params", "{bogus: 1}"], nothing, "bogus"),
    ("sampler-flag-unknown", [*TRAIN, "--sampler.temperature", "0.3"], nothing, "'uniform' takes no parameter 'temperature'"),
    ("sampler-flag-word", [*TRAIN, "--sampler", "plr", "--sampler.temperature", "abc"], nothing, "sampler.temperature"),
    ("sampler-param-yes", [*TRAIN, "--sampler", "plr", "--sampler.params", "{replay_prob: yes}"], nothing, "replay_prob"),
    # maze options
    ("full-obs-maybe", [*TRAIN, "--env.options", "{full_obs: maybe}"], nothing, "full_obs must be true or false"),
    ("full-obs-string", [*TRAIN, "--env.options", "{full_obs: 'false'}"], nothing, "full_obs must be true or false"),
    ("num-test-levels-huge", [*TRAIN, "--env.options", "{num_test_levels: 100000000}"], nothing, "num_test_levels"),
    ("option-unknown", [*TRAIN, "--env.options", "{colour: red}"], nothing, "unknown maze option"),
    ("options-list", [*TRAIN, "--env.options", "[1, 2]"], nothing, "mapping"),
    ("options-bad-yaml", [*TRAIN, "--env.options", "{a: [}"], nothing, "env.options"),
    ("option-size-small", [*TRAIN, "--env.options", "{size: 3}"], nothing, "size must be"),
    ("option-view-even", [*TRAIN, "--env.options", "{view_size: 4}"], nothing, "view_size"),
    # config files
    ("config-missing", [*TRAIN, "--config", "{tmp}/nope.yaml"], nothing, "does not exist"),
    ("config-directory", [*TRAIN, "--config", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("config-binary", [*TRAIN, "--config", "{tmp}/bin.yaml"], write("bin.yaml", b"\x80\x81\xfe\x00"), "not a text file"),
    ("config-unreadable", [*TRAIN, "--config", "{tmp}/c.yaml"], unreadable("c.yaml"), "permission denied"),
    ("config-section-as-value", [*TRAIN, "--config", "{tmp}/c.yaml"], write("c.yaml", "env: maze\n"), "env is a section"),
    ("config-bad-yaml", [*TRAIN, "--config", "{tmp}/c.yaml"], write("c.yaml", "ppo: [\n"), "not valid YAML"),
    ("config-list", [*TRAIN, "--config", "{tmp}/c.yaml"], write("c.yaml", "- 1\n- 2\n"), "mapping"),
    ("config-unknown-key", [*TRAIN, "--config", "{tmp}/c.yaml"], write("c.yaml", "ppo: {lrr: 1}\n"), "unknown setting 'ppo.lrr'"),
    ("config-bad-value", [*TRAIN, "--config", "{tmp}/c.yaml"], write("c.yaml", "ppo: {lr: fast}\n"), "ppo.lr"),
    # held-out level files
    ("test-levels-missing", [*TRAIN, "--env.test_levels", "{tmp}/nope.txt"], nothing, "no level set"),
    ("test-levels-directory", [*TRAIN, "--env.test_levels", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("test-levels-binary", [*TRAIN, "--env.test_levels", "{tmp}/l.txt"], write("l.txt", b"\xff\xfe\x00"), "not a text file"),
    ("test-levels-unreadable", [*TRAIN, "--env.test_levels", "{tmp}/c.yaml"], unreadable("c.yaml"), "permission denied"),
    ("test-levels-garbage", [*TRAIN, "--env.test_levels", "{tmp}/l.txt"], write("l.txt", "hello\n"), "level 1"),
    ("test-levels-unsolvable", [*TRAIN, "--env.test_levels", "{tmp}/l.txt"],
     write("l.txt", f"{SOLVABLE}\n\n{UNSOLVABLE}\n"), "1 of 2 levels cannot be solved"),
    # run directories
    ("run-dir-is-a-file", ["train", *FAST, "--run-dir", "{tmp}/afile"], write("afile", "x"), "is a file"),
    ("run-dir-below-a-file", ["train", *FAST, "--run-dir", "{tmp}/afile/run"], write("afile", "x"), "which is a file"),
    ("run-dir-holds-a-run", ["train", *FAST, "--seed", "5", "--run-dir", "{run}"], nothing, "already holds a run"),
    # --resume
    ("resume-missing", ["train", "--resume", "{tmp}/nope"], nothing, "holds no heldout run"),
    ("resume-a-file", ["train", "--resume", "{tmp}/afile"], write("afile", "x"), "is a file"),
    ("resume-changes-a-setting", ["train", "--resume", "{run}", "--ppo.lr", "0.1"], nothing, "--resume keeps the run's config"),
    ("resume-with-config", ["train", "--resume", "{run}", "--config", "{tmp}/c.yaml"], write("c.yaml", "steps: 1\n"), "--config"),
    ("resume-other-run-dir", ["train", "--resume", "{run}", "--run-dir", "{tmp}/other"], nothing, "not two different"),
    ("resume-bad-steps", ["train", "--resume", "{run}", "--steps", "1e999"], nothing, "bad value for steps"),
    ("resume-empty-config", ["train", "--resume", "{run}"], run_config(lambda d: None), "config.yaml is empty"),
    ("resume-bad-config-value", ["train", "--resume", "{run}"], set_key("env", "num_envs", 0), "env.num_envs"),
    ("resume-no-checkpoint", ["train", "--resume", "{run}"], checkpoint_file("missing"), "has no checkpoint"),
    ("resume-corrupt-checkpoint", ["train", "--resume", "{run}"], checkpoint_file("corrupt"), "corrupt"),
    ("resume-checkpoint-is-a-directory", ["train", "--resume", "{run}"], checkpoint_file("directory"), "is a directory"),
    ("resume-pickled-checkpoint", ["train", "--resume", "{run}"], checkpoint_file("pickle"), "pickled objects"),
    ("resume-other-network-size", ["train", "--resume", "{run}"], set_key("network", "features_dim", 48),
     "network.features_dim"),
    ("resume-other-sampler", ["train", "--resume", "{run}"], set_key("sampler", "name", "plr"), "sampler.name"),
    # evaluate
    ("evaluate-missing", ["evaluate", "{tmp}/nope"], nothing, "holds no heldout run"),
    ("evaluate-a-file", ["evaluate", "{tmp}/afile"], write("afile", "x"), "is a file"),
    ("evaluate-empty-config", ["evaluate", "{run}"], run_config(lambda d: None), "config.yaml is empty"),
    ("evaluate-bad-config-value", ["evaluate", "{run}"], set_key("eval", "num_envs", -2), "eval.num_envs"),
    ("evaluate-levels-unknown", ["evaluate", "{run}", "--levels", "nope"], nothing, "no level set 'nope'"),
    ("evaluate-levels-directory", ["evaluate", "{run}", "--levels", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("evaluate-levels-binary", ["evaluate", "{run}", "--levels", "{tmp}/l.txt"], write("l.txt", b"\x00\xff"), "not a text"),
    ("evaluate-levels-unreadable", ["evaluate", "{run}", "--levels", "{tmp}/c.yaml"], unreadable("c.yaml"), "permission"),
    ("evaluate-levels-unsolvable", ["evaluate", "{run}", "--levels", "{tmp}/l.txt"], write("l.txt", UNSOLVABLE),
     "1 of 1 levels cannot be solved"),
    ("evaluate-episodes-zero", ["evaluate", "{run}", "--episodes", "0"], nothing, "--episodes"),
    ("evaluate-seed-negative", ["evaluate", "{run}", "--seed", "-1"], nothing, "--seed"),
    ("evaluate-output-directory", ["evaluate", "{run}", "--output", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("evaluate-output-no-parent", ["evaluate", "{run}", "--output", "{tmp}/no/r.json"], nothing, "does not exist"),
    ("evaluate-output-below-a-file", ["evaluate", "{run}", "--output", "{tmp}/afile/r.json"], write("afile", "x"),
     "which is a file"),
    ("evaluate-output-the-runs-report", ["evaluate", "{run}", "--output", "{run}/report.json"], nothing,
     "would replace the run's own report.json"),
    ("evaluate-output-in-checkpoints", ["evaluate", "{run}", "--output", "{run}/checkpoints/e.json"], nothing,
     "would replace the run's own checkpoints"),
    ("evaluate-no-checkpoint", ["evaluate", "{run}"], checkpoint_file("missing"), "has no checkpoint"),
    ("evaluate-corrupt-checkpoint", ["evaluate", "{run}"], checkpoint_file("corrupt"), "corrupt"),
    ("evaluate-checkpoint-is-a-directory", ["evaluate", "{run}"], checkpoint_file("directory"), "is a directory"),
    ("evaluate-pickled-checkpoint", ["evaluate", "{run}"], checkpoint_file("pickle"), "pickled objects"),
    ("evaluate-other-network-size", ["evaluate", "{run}"], set_key("network", "features_dim", 48), "network.features_dim"),
    ("evaluate-other-sampler", ["evaluate", "{run}"], set_key("sampler", "name", "plr"), "sampler.name"),
    # maze and envs commands
    ("maze-show-missing", ["maze", "show", "{tmp}/nope.txt"], nothing, "does not exist"),
    ("maze-show-directory", ["maze", "show", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("maze-show-binary", ["maze", "show", "{tmp}/l.txt"], write("l.txt", b"\x80\x00"), "not a text file"),
    ("maze-show-garbage", ["maze", "show", "{tmp}/l.txt"], write("l.txt", "hello\n"), "level 1"),
    ("maze-show-num-zero", ["maze", "show", "--set", "named", "--num", "0"], nothing, "--num"),
    ("maze-save-unknown-set", ["maze", "save", "nope", "{tmp}/out.txt"], nothing, "nope"),
    ("maze-save-into-directory", ["maze", "save", "named", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("maze-save-below-a-file", ["maze", "save", "named", "{tmp}/afile/out.txt"], write("afile", "x"), "which is a file"),
    ("envs-unknown", ["envs", "mazee", "--level-sets"], nothing, "mazee"),
    # settings with no sane meaning beyond a bound, and settings of a part the run does not use
    ("lr-1e10", [*TRAIN, "--ppo.lr", "1e10"], nothing, "ppo.lr must be a number in (0, 1]"),
    ("ent-coef-5", [*TRAIN, "--ppo.ent_coef", "5"], nothing, "ppo.ent_coef must be a number in [0, 1]"),
    ("clip-range-2", [*TRAIN, "--ppo.clip_range", "2"], nothing, "ppo.clip_range"),
    ("augment-with-ppo", [*TRAIN, "--agent", "ppo", "--augment", "cutout"], nothing,
     "--augment.* settings are given, but --agent ppo does not use them"),
    ("bonus-unknown", [*TRAIN, "--bonus", "curiosity"], nothing, "bad value bonus.name='curiosity'"),
    ("bonus-ridge-0", [*TRAIN, "--bonus", "e3b", "--bonus.ridge", "0"], nothing, "bad value bonus.ridge=0.0"),
    ("bonus-part-swapped", [*TRAIN, "--bonus", "product", "--bonus.global_part", "e3b"], nothing,
     "bad value bonus.global_part='e3b'"),
    ("bonus-settings-without-bonus", [*TRAIN, "--bonus.coef", "0.5"], nothing,
     "--bonus.* settings are given, but no --bonus"),
    # settings that allocate: checked against a limit or a memory estimate before anything is built
    ("num-envs-100000", [*TRAIN, "--env.num_envs", "100000"], nothing, "--env.num_envs 100,000 is more than heldout allows (4,096)"),
    ("eval-num-envs-10000", [*TRAIN, "--eval.num_envs", "10000"], nothing, "--eval.num_envs 10,000"),
    ("eval-episodes-1e6", [*TRAIN, "--eval.episodes", "1000000"], nothing, "--eval.episodes 1,000,000"),
    ("final-episodes-1e6", [*TRAIN, "--eval.final_episodes", "1000000"], nothing, "--eval.final_episodes"),
    ("rollout-beyond-memory", [*TRAIN, "--ppo.n_steps", "100000000", "--ppo.n_minibatches", "1"], nothing,
     "needs a rollout buffer of about"),
    # user files through checks
    ("sweep-base-a-list", ["sweep", "{tmp}/s.yaml", "--sweep-dir", "{tmp}/sw"],
     write("s.yaml", "base: [1, 2]\nmethods: {a: {sampler.name: uniform}}\n"), "base must be a mapping of settings"),
    ("sweep-method-sets-seed", ["sweep", "{tmp}/s.yaml", "--sweep-dir", "{tmp}/sw"],
     write("s.yaml", "methods: {a: {sampler.name: uniform, seed: 3}}\n"), "method a sets seed"),
    ("maze-show-unbounded-set", ["maze", "show", "--set", "random"], nothing, "drawn at random without end"),
    # results files read back by compare (and a resume): the file and the problem, never "unfinished"
    ("compare-report-corrupt", ["compare", "{tmp}/r"], write("r/report.json", '{"train":'),
     "r/report.json is corrupt (not valid JSON"),
    ("compare-report-a-list", ["compare", "{tmp}/r"], write("r/report.json", "[1, 2]"),
     "r/report.json holds a list where a run's report belongs"),
    ("compare-report-missing-scores", ["compare", "{tmp}/r"], write("r/report.json", '{"finished": "2024"}'),
     "r/report.json has no number at train.mean"),
    ("compare-report-not-finished-key", ["compare", "{tmp}/r"], write("r/report.json", '{"train": {"mean": 1}}'),
     "r/report.json has no 'finished' entry"),
    ("compare-evaluations-corrupt", ["compare", "{run}"], in_run("evaluations.jsonl", '\n{bad\n'),
     "evaluations.jsonl line 2 is corrupt (not valid JSON"),
    ("compare-sweep-corrupt", ["compare", "{tmp}/sw"], write("sw/sweep.json", "{"), "sw/sweep.json is corrupt"),
    ("compare-sweep-a-list", ["compare", "{tmp}/sw"], write("sw/sweep.json", "[]"),
     "sw/sweep.json holds a list where a sweep index belongs"),
    ("compare-sweep-no-runs", ["compare", "{tmp}/sw"], write("sw/sweep.json", '{"spec": {}}'), "has no list of runs"),
    ("compare-sweep-run-as-path", ["compare", "{tmp}/sw"],
     write("sw/sweep.json", '{"runs": [{"name": "../r", "method": "a", "status": "finished"}]}'), "not a directory name"),
    ("compare-same-run-twice", ["compare", "{run}", "{run}/../run"], nothing, "is named twice"),
    ("compare-not-a-run", ["compare", "{tmp}/adir"], mkdir("adir"), "neither a run directory"),
    ("resume-evaluations-corrupt", ["train", "--resume", "{run}", "--no-progress"],
     in_run("evaluations.jsonl", '{"steps": 64}\nnope\n'), "evaluations.jsonl line 2 is corrupt"),
    ("resume-probe-record-no-steps", ["train", "--resume", "{run}", "--no-progress"],
     in_run("probe.jsonl", '{"bound": 1}\n'), "probe.jsonl line 1 has no whole number at 'steps'"),
    # level files past the size limit: refused from their size, before any of it is read
    ("maze-show-huge-file", ["maze", "show", "{tmp}/big.txt"], sparse("big.txt", 32_000_001),
     "is 32.0 MB (32,000,001 bytes), more than the 32,000,000 a level file may hold"),
    ("test-levels-huge-file", [*TRAIN, "--env.test_levels", "{tmp}/big.txt"], sparse("big.txt", 32_000_001),
     "more than the 32,000,000 a level file may hold"),
    # dred
    ("dred-fit-out-directory", ["dred", "fit", "--env", "maze", "--out", "{tmp}/adir"], mkdir("adir"), "is a directory"),
    ("dred-fit-levels-missing", ["dred", "fit", "--env", "maze", "--levels", "{tmp}/nope.txt", "--out", "{tmp}/m.pt"],
     nothing, "no level set"),
    ("dred-fit-levels-huge", ["dred", "fit", "--env", "maze", "--levels", "{tmp}/big.txt", "--out", "{tmp}/m.pt"],
     sparse("big.txt", 32_000_001), "more than the 32,000,000 a level file may hold"),
    ("dred-fit-threads-zero", ["dred", "fit", "--env", "maze", "--threads", "0", "--out", "{tmp}/m.pt"], nothing,
     "--threads must be at least 1"),
    ("dred-fit-bad-set", ["dred", "fit", "--env", "maze", "--set", "{a: [}", "--out", "{tmp}/m.pt"], nothing,
     "--set is not valid YAML (line 1, column 6: expected the node content, but found '}')"),
    ("dred-fit-env-unknown", ["dred", "fit", "--env", "mazee", "--out", "{tmp}/m.pt"], nothing, "unknown environment 'mazee'"),
    ("dred-sample-missing", ["dred", "sample", "{tmp}/nope.pt"], nothing, "no DRED model file at"),
    ("dred-sample-not-a-model", ["dred", "sample", "{tmp}/m.pt"], write("m.pt", "{}"), "is not a readable DRED model file"),
    # envs and maze
    ("envs-unknown-family", ["envs", "nope"], nothing, "unknown environment 'nope'"),
    ("maze-show-unknown-set", ["maze", "show", "--set", "nope"], nothing, "maze has no level set 'nope'"),
    ("maze-show-zero-train-levels", ["maze", "show", "--set", "train", "--num-train-levels", "0"], nothing,
     "num_train_levels must be a whole number from 1"),
    ("maze-save-size-2", ["maze", "save", "train", "{tmp}/o.txt", "--size", "2"], nothing, "size must be an integer from 7"),
    # collect
    ("collect-no-run", ["collect", "{tmp}/adir", "--episodes", "3", "--out", "{tmp}/d"], mkdir("adir"), "holds no heldout run"),
    ("collect-episodes-zero", ["collect", "{run}", "--episodes", "0", "--out", "{tmp}/d"], nothing, "--episodes must be at least 1"),
    ("collect-epsilon-2", ["collect", "{run}", "--episodes", "3", "--epsilon", "2", "--out", "{tmp}/d"], nothing,
     "--epsilon must be a probability"),
    ("collect-out-exists", ["collect", "{run}", "--episodes", "3", "--out", "{tmp}/adir"], mkdir("adir"), "already exists"),
    ("collect-scripted-with-checkpoint", ["collect", "{run}", "--episodes", "3", "--policy", "shortest-path",
                                          "--checkpoint", "{tmp}/x.pt", "--out", "{tmp}/d"], nothing, "plays no checkpoint"),
    ("collect-held-out-levels", ["collect", "{run}", "--episodes", "3", "--levels", "test", "--out", "{tmp}/d"], nothing,
     "pass --allow-held-out"),
    ("collect-pickled-checkpoint", ["collect", "{run}", "--episodes", "3", "--checkpoint", "{tmp}/c.pt", "--out", "{tmp}/d"],
     write("c.pt", pickle.dumps({"a": 1})), "holds pickled objects"),
    # one writer per run directory
    ("train-on-a-locked-run-dir", TRAIN, hold_lock("new"), "is in use by another heldout process (pid"),
    ("resume-a-locked-run", ["train", "--resume", "{run}", "--no-progress"], hold_lock("run"), "is in use by another"),
]  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("census") / "run"
    assert main(["train", *FAST, "--run-dir", str(run)]) == 0
    return run


def snapshot(root: Path) -> dict[str, bytes | None]:
    def content(p: Path) -> bytes | None:
        if not p.is_file():
            return None
        with open(p, "rb") as f:  # not Path.read_bytes: the "unreadable" cases patch it
            return f.read()

    return {str(p.relative_to(root)): content(p) for p in sorted(root.rglob("*"))}


def test_the_census_has_at_least_50_cases_with_distinct_ids():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 50


@pytest.mark.parametrize("argv, setup, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_exit_2_and_nothing_written(
    argv, setup, needle, tmp_path, trained_run, capsys, monkeypatch
):
    tmp = tmp_path / "case"
    run = tmp / "run"
    tmp.mkdir()
    if any("{run}" in a for a in argv):
        shutil.copytree(trained_run, run)
    monkeypatch.chdir(tmp)  # a default run directory (runs/...) would land here and be caught
    setup(tmp, run, monkeypatch)
    before = snapshot(tmp)
    args = [a.replace("{tmp}", str(tmp)).replace("{run}", str(run)).replace("{new}", str(tmp / "new")) for a in argv]
    capsys.readouterr()

    code = main(args)

    out, err = capsys.readouterr()
    monkeypatch.undo()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"heldout {args[0]}: error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err and out == ""
    if args[0] == "evaluate":
        assert "--resume" not in lines[0]  # evaluate has no --resume
    assert snapshot(tmp) == before, "a rejected command wrote or changed files"
    assert not (tmp / "pwned").exists()


@pytest.mark.parametrize("argv, needle", [
    (["train", "--steps", "1e999", "--no-progress"], "bad value for steps"),
    (["evaluate", "nowhere"], "holds no heldout run"),
])  # fmt: skip
def test_the_installed_command_exits_2_with_one_line(tmp_path, argv, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "heldout.cli", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []
