"""Diverging training: NaN or inf in the agent's parameters after an update stops the run with one line
naming the update, the settings that usually cause it, and the last good checkpoint (never overwritten
by a diverged one: the check runs right after the update, before any checkpoint of it)."""

from __future__ import annotations

import torch

from heldout.cli import UsageError
from heldout.trainer.build import Run
from heldout.trainer.rundir import CHECKPOINT


def update_agent(run: Run) -> None:
    """``run.model.train()``, then :func:`check_finite`; NaN met inside the update (torch refuses NaN
    logits mid-epoch with a tensor dump) is named the same way. Updates count from the run's start."""
    update = run.model.num_timesteps // (run.model.n_steps * run.model.n_envs)
    try:
        run.model.train()
    except (ValueError, RuntimeError) as err:
        check_finite(run, update)
        if "nan" in str(err).lower():
            _diverged(run, update, "the network's outputs hold NaN")
        raise
    check_finite(run, update)


def check_finite(run: Run, update: int) -> None:
    """Raise UsageError if a parameter of ``run.model`` holds NaN or inf after update ``update``."""
    bad = next((name for name, p in run.model.policy.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:
        _diverged(run, update, f"parameter {bad} holds NaN or inf")


def _diverged(run: Run, update: int, what: str) -> None:
    model, cfg = run.model, run.cfg
    path = run.run_dir / CHECKPOINT if run.run_dir is not None else None
    kept = f"the last good checkpoint {path} is kept" if path is not None and path.is_file() else "no checkpoint was written"
    raise UsageError(
        f"training diverged at update {update} ({model.num_timesteps:,} steps): {what}; "
        f"lower --ppo.lr (now {cfg.ppo.lr:g}) or --ppo.max_grad_norm (now {cfg.ppo.max_grad_norm:g}), or check "
        f"--ppo.ent_coef ({cfg.ppo.ent_coef:g}) and --ppo.vf_coef ({cfg.ppo.vf_coef:g}); {kept}"
    )
