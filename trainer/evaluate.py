"""The trainer's evaluations: the agent on every level set, periodic and final, to TensorBoard and files."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable

from heldout.evaluation import episodes as evaluation, probe, report
from heldout.trainer.build import Run
from heldout.trainer.rundir import EVALUATIONS, PROBES
from heldout.trainer.signals import StopSignals


def evaluate_all(run: Run, episodes: int, seed_offset: int = 0, model: Any = None) -> dict[str, Any]:
    """The agent (or ``model``, another of the run's agents) on the training set and on every
    held-out set (see :func:`evaluation.summarise_sets`)."""
    cfg = run.cfg
    runs = {}
    for name, levels in (("train", run.train_levels), *run.test_sets.items()):
        runs[name] = evaluation.run_episodes(
            run.model if model is None else model,
            run.family,
            levels,
            episodes,
            num_envs=cfg.eval.num_envs,
            deterministic=cfg.eval.deterministic,
            seed=cfg.seed + 1_000_003 + seed_offset,
            env_options=cfg.env.options,
        )
    train = runs.pop("train")
    return evaluation.summarise_sets(run.family, train, runs, run.test_sets, cfg.env.options)


def log_evaluation(logger, prefix: str, summary: dict[str, Any]) -> None:
    """``{prefix}/train``, ``/test``, ``/gap`` (the first held-out set), then per held-out set
    ``{prefix}/sets/NAME``, ``{prefix}/gaps/NAME`` and, for named levels, ``{prefix}/levels/NAME/LEVEL``."""
    for part in ("train", "test", "gap"):
        logger.record(f"{prefix}/{part}", summary[part]["mean"])
        for unit in ("return", "normalised"):
            if unit in summary[part]:
                logger.record(f"{prefix}/{part}_{unit}", summary[part][unit]["mean"])
    for name, entry in summary["test_sets"].items():
        logger.record(f"{prefix}/sets/{name}", entry["score"]["mean"])
        logger.record(f"{prefix}/gaps/{name}", entry["gap"]["mean"])
        for level, stats in entry.get("per_level", {}).items():
            logger.record(f"{prefix}/levels/{name}/{level}", stats["mean"])


def scores_layout(test_sets: list[str]) -> dict[str, dict[str, list]]:
    """TensorBoard's custom-scalars layout: train, every held-out set and every gap in one chart
    (the tags :func:`log_evaluation` writes), periodic and final."""
    def tags(prefix: str) -> list[str]:
        return [f"{prefix}/train", *(f"{prefix}/sets/{s}" for s in test_sets), *(f"{prefix}/gaps/{s}" for s in test_sets)]

    return {"heldout": {"train, held-out sets and gaps": ["Multiline", tags("eval")],
                        "final evaluation": ["Multiline", tags("final")]}}


def add_scores_layout(logger, test_sets: list[str]) -> None:
    """Write :func:`scores_layout` to the run's TensorBoard files (once per start or resume)."""
    for output in logger.output_formats:
        writer = getattr(output, "writer", None)
        if writer is not None:
            writer.add_custom_scalars(scores_layout(test_sets))
            writer.flush()


def evaluate_and_log(run: Run, stop: StopSignals | None = None) -> dict[str, Any]:
    """A periodic evaluation: to TensorBoard (``eval/...``) and to ``evaluations.jsonl`` (the line
    written whole even if ``stop`` is signalled meanwhile)."""
    steps = run.model.num_timesteps
    summary = evaluate_all(run, run.cfg.eval.episodes)
    log_evaluation(run.model.logger, "eval", summary)
    with _held(stop):
        report.append_jsonl(run.run_dir / EVALUATIONS, {"steps": steps, **summary})
        run.last_eval_step = steps
    return summary


def probe_and_log(run: Run, stop: StopSignals | None = None) -> dict[str, Any]:
    """The level-identity probe (:mod:`heldout.evaluation.probe`): to TensorBoard (``probe/...``) and ``probe.jsonl``."""
    cfg = run.cfg
    result = probe.run(run.model, run.family, run.train_levels, cfg.probe.steps, cfg.seed + 2_000_003,
                       cfg.env.options, cfg.probe.fit)  # fmt: skip
    probe.log(run.model.logger, result)
    with _held(stop):
        report.append_jsonl(run.run_dir / PROBES, {"steps": run.model.num_timesteps, **result})
    return result


def _held(stop: StopSignals | None) -> Any:
    return stop.held(stop_after=False) if stop is not None else nullcontext()


PERIODIC: dict[str, Callable[[Run, StopSignals | None], Any]] = {"eval": evaluate_and_log, "probe": probe_and_log}
"""What the training loop runs between updates when due, in this order."""


def run_periodic(run: Run, due: list[str], stop: StopSignals | None = None) -> list[str]:
    """Run the periodic evaluations ``due`` (keys of :data:`PERIODIC`) in order and return those a
    signal left undone: the one it cut short (:meth:`StopSignals.interruptible`) and the ones after
    it. Each changes nothing that training uses (forked RNGs, envs of its own), so the state
    before an undone one is the state after it, and a checkpoint of it may list it as pending."""
    for i, task in enumerate(due):
        if stop is not None and stop.requested is not None:
            return due[i:]
        done = False
        with stop.interruptible() if stop is not None else nullcontext():
            PERIODIC[task](run, stop)
            done = True
        if not done:
            return due[i:]
    return []
