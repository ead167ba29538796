"""``heldout dred``: fit DRED's generative model of the training levels, and sample from it.

    heldout dred fit --env maze --levels train --train-levels 25 --out model.pt
    heldout dred sample model.pt -n 16 > generated.txt      # levels in level-file text form

This module is the trainer's side of DRED: it knows the environments (the ``generators``
package does not) and prepares the ``dred`` sampler of ``heldout train --sampler dred``:

* ``--sampler.params '{model: model.pt}'`` uses a fitted model (it must have been fitted on
  exactly the run's training levels; its fingerprints are checked) and copies it into the run;
* without ``model`` the run fits one first, inside the run directory
  (``dred/model.pt``, losses in ``tb/dred_fit``), with the settings of
  ``--sampler.params '{fit: {max_epochs: 300, latent_dim: 32}}'`` (any :class:`VAEConfig` or
  :class:`FitConfig` field);
* a resumed (or restarted) run reuses the model in its directory, so it is never refitted.

Every other key of ``--sampler.params`` goes to the sampler (``heldout.level_samplers.DREDSampler``).
The trainer provides this model's generator to any sampler whose constructor takes a
``generator`` (``heldout.level_samplers.needs``), with no branch on the sampler's name.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from heldout import safe_write
from heldout.cli import UsageError

MODEL_FILE = Path("dred") / "model.pt"
TRAINER_KEYS = ("model", "fit")
"""Keys of ``--sampler.params`` that the trainer takes; the rest go to the sampler."""


# -- fitting ------------------------------------------------------------------------------------


def configs(settings: dict[str, Any], shape: tuple[int, int]):
    """(VAEConfig, FitConfig) from one mapping of settings of either; unknown keys are errors."""
    from heldout.generators import FitConfig, VAEConfig

    vae_fields = {f.name for f in dataclasses.fields(VAEConfig)} - {"height", "width"}
    fit_fields = {f.name for f in dataclasses.fields(FitConfig)}
    if not isinstance(settings, dict):
        raise UsageError(f"DRED fit settings must be a mapping such as '{{max_epochs: 300}}', got {settings!r}")
    unknown = sorted(set(settings) - vae_fields - fit_fields)
    if unknown:
        raise UsageError(
            f"unknown DRED fit setting(s) {', '.join(unknown)}; accepted: {', '.join(sorted(vae_fields | fit_fields))}"
        )
    try:
        vae = VAEConfig.from_dict(
            {"height": shape[0], "width": shape[1], **{k: v for k, v in settings.items() if k in vae_fields}}
        )
        fit = FitConfig(**{k: v for k, v in settings.items() if k in fit_fields})
        fit.validate()
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    return vae, fit


def encode_levels(space: Any, levels: Any, what: str) -> np.ndarray:
    """(N, H, W) code grids of ``levels``; UsageError if the family has no encoding or sizes differ."""
    try:
        codes = [np.asarray(space.encode(lv), dtype=np.uint8) for lv in levels]
    except NotImplementedError as err:
        raise UsageError(f"{err}; DRED's generative model needs levels with an array encoding (e.g. --env maze)") from None
    shapes = sorted({c.shape for c in codes})
    if len(shapes) != 1:
        raise UsageError(f"{what} holds levels of several sizes ({shapes}); DRED fits levels of one size")
    if len(codes) < 2:
        raise UsageError(f"{what} holds {len(codes)} level; DRED interpolates between levels and needs at least 2")
    return np.stack(codes)


def fit_model(codes: np.ndarray, settings: dict[str, Any], meta: dict[str, Any], *, tb_dir: Path | None, progress: bool):
    """Fit the VAE on ``codes`` with a progress bar and TensorBoard logs; returns (DREDModel, seconds)."""
    import torch

    from heldout.generators import DREDModel, fit, reconstruction_accuracy
    from heldout.generators.fit import as_plain

    vae_cfg, fit_cfg = configs(settings, codes.shape[1:])
    writer = None
    if tb_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(tb_dir))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=fit_cfg.max_epochs, unit="epoch", desc="dred fit", dynamic_ncols=True)

    def on_epoch(m: dict[str, float]) -> None:
        epoch = int(m["epoch"])
        if writer is not None:
            for key in ("loss", "layout", "goal", "start", "direction", "kl", "val_loss", "accuracy", "val_accuracy"):
                if key in m:
                    writer.add_scalar(f"dred_fit/{key}", m[key], epoch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{m['loss']:.1f}", val=f"{m.get('val_loss', float('nan')):.1f}", acc=f"{m['accuracy']:.3f}")

    started = time.time()
    try:
        result = fit(codes, vae_cfg, fit_cfg, on_epoch=on_epoch)
    except BaseException:  # a signal or an error: the logs so far are closed (the caller may remove them)
        if writer is not None:
            writer.close()
        raise
    finally:
        if bar is not None:
            bar.close()
    seconds = time.time() - started
    if writer is not None:
        writer.close()
    summary = as_plain(result)
    summary["seconds"] = round(seconds, 2)
    summary["accuracy_all"] = reconstruction_accuracy(result.model, torch.as_tensor(codes, dtype=torch.long))
    dred = DREDModel(result.model, codes, result.holdout, fit_cfg, summary, {**meta, "settings": dict(settings)})
    return dred, seconds


def _remove_logs(tb_dir: Path) -> None:
    """Remove the fit's TensorBoard folder, and its parent (the run's ``tb``) when that is left empty."""
    shutil.rmtree(tb_dir, ignore_errors=True)
    try:
        tb_dir.parent.rmdir()
    except OSError:
        pass


def validity(dred: Any, space: Any, batches: int = 10, seed: int = 0) -> dict[str, int]:
    """valid / solvable / repaired / dropped counts of ``batches`` generation batches."""
    from heldout.generators import LevelGenerator

    generator = LevelGenerator(dred.model, space, dred.levels, max_batches=batches)
    generator(np.random.default_rng(seed), sys.maxsize)  # asks for more than it can make: every batch runs
    return generator.counts


def generator_measures(dred: Any, space: Any, batches: int = 10, seed: int = 0) -> dict[str, dict[str, float]]:
    """:func:`heldout.generators.measure.measure_decodes` of the fitted model (both decode rules)."""
    from heldout.generators import LevelGenerator
    from heldout.generators.measure import as_plain, measure_decodes

    return as_plain(measure_decodes(LevelGenerator(dred.model, space, dred.levels), batches=batches, seed=seed))


# -- the trainer's side -------------------------------------------------------------------------


def split_params(params: dict[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(model path, fit settings, the sampler's own parameters) of ``--sampler.params``."""
    rest = {k: v for k, v in params.items() if k not in TRAINER_KEYS}
    model = params.get("model")
    if model is not None and not isinstance(model, str):
        raise UsageError(f"--sampler.params model must be a path to a DRED model file, got {model!r}")
    return model, dict(params.get("fit") or {}), rest


def load_checked(path: Path, space: Any, train_levels: Any, cfg: Any):
    """A model file that was fitted on exactly the run's training levels."""
    from heldout.generators import fingerprint, load

    dred = load(path)
    wanted = [fingerprint(space.encode(lv)) for lv in train_levels]
    if dred.fingerprints != wanted:
        raise UsageError(
            f"{path} was fitted on other levels than this run's {len(wanted)} training levels "
            f"({cfg.env.name}, seed {cfg.env.level_seed}); fit one with "
            f"`heldout dred fit --env {cfg.env.name} --train-levels {cfg.env.num_train_levels} --out FILE`"
        )
    return dred


def _run_inputs(cfg: Any):
    from heldout import envs

    try:
        family = envs.get(cfg.env.name)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    options = dict(cfg.env.options)
    train = family.level_set("train", num_train_levels=cfg.env.num_train_levels, level_seed=cfg.env.level_seed, **options)
    return family.level_space(**options), train


def prepare_run(cfg: Any, run_dir: Path, *, progress: bool = True) -> Path:
    """Make sure ``run_dir`` holds the run's DRED model (``dred/model.pt``); returns its path.

    Kept as it is when present (resume, restart); copied from ``model`` when given; else
    fitted on the run's training levels with the ``fit`` settings.
    """
    from heldout.generators import save

    model, settings, _ = split_params(cfg.sampler.params)
    space, train = _run_inputs(cfg)
    target = Path(run_dir) / MODEL_FILE
    if target.exists():
        load_checked(target, space, train, cfg)
        return target
    if model is not None:
        load_checked(Path(model), space, train, cfg)
        safe_write.make_dirs(target.parent)
        safe_write.replace_with(target, lambda tmp: shutil.copyfile(model, tmp))
        return target
    codes = encode_levels(space, train, "the training set")
    configs(settings, codes.shape[1:])  # bad settings fail before anything is written
    if cfg.torch_threads:
        import torch

        torch.set_num_threads(cfg.torch_threads)  # the run's thread count (its default oversubscribes a busy machine)
    meta = {"env": cfg.env.name, "env_options": dict(cfg.env.options), "levels": "train", "level_seed": cfg.env.level_seed}
    print(f"heldout train: fitting DRED's model of the {len(codes)} training levels -> {target}")
    tb_dir = Path(run_dir) / "tb" / "dred_fit"
    fresh = not tb_dir.exists()
    try:
        dred, seconds = fit_model(codes, settings, meta, tb_dir=tb_dir, progress=progress)
    except BaseException:  # a signal or an error: the run directory is left as before the fit
        if fresh:
            _remove_logs(tb_dir)
        raise
    from heldout.generators.measure import report_lines

    dred.fit_summary["generator"] = generator_measures(dred, space)
    save(dred, target)
    print(summary_line(dred, seconds))
    for line in report_lines(dred.fit_summary["generator"], dred.model.config.decode):
        print(line)
    return target


def run_generator(cfg: Any, run_dir: Path | None):
    """The level generator of the run's fitted model (the run directory's, else the ``model`` given):
    what the trainer provides to a sampler that needs a ``generator``."""
    from heldout.generators import LevelGenerator

    model, _, _ = split_params(cfg.sampler.params)
    path = Path(run_dir) / MODEL_FILE if run_dir is not None else None
    if path is None or not path.exists():
        if model is None:
            raise UsageError(
                f"the {cfg.sampler.name} sampler needs a fitted model: give --sampler.params '{{model: FILE}}' "
                "(from `heldout dred fit`) or let `heldout train` fit one in the run directory"
            )
        path = Path(model)
    space, train = _run_inputs(cfg)
    dred = load_checked(path, space, train, cfg)
    return LevelGenerator(dred.model, space, dred.levels)


def summary_line(dred: Any, seconds: float) -> str:
    s = dred.fit_summary
    best = s["best"]
    held = f", held-out {best['val_accuracy']:.3f}" if "val_accuracy" in best else ""
    return (
        f"fitted in {seconds:.1f} s ({s['epochs']} epochs, best {s['best_epoch']}): reconstruction accuracy "
        f"(cells) {best['accuracy']:.3f} on the fitted levels{held}; {s['accuracy_all']['cell']:.3f} on all "
        f"{len(dred.levels)} training levels, {s['accuracy_all']['level']:.3f} of them exactly"
    )


# -- command line -------------------------------------------------------------------------------


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dred", help="fit DRED's generative model of the training levels, sample new levels")
    dred_sub = p.add_subparsers(dest="dred_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    f = dred_sub.add_parser("fit", help="fit the VAE on a level set (the training levels)")
    f.add_argument("--env", default="maze", help="environment family (default maze)")
    f.add_argument("--levels", default="train", help="level set name or level file (default train)")
    f.add_argument(
        "--train-levels", type=int, default=None,
        help="levels in the train set (default: as many as `heldout train --env ENV` uses: its preset's env.num_train_levels)",
    )  # fmt: skip
    f.add_argument("--level-seed", type=int, default=0, help="seed of the level sets (default 0)")
    f.add_argument("--out", required=True, help="the model file to write")
    f.add_argument("--tb", default=None, help="TensorBoard directory (default: OUT without suffix + '-tb')")
    f.add_argument("--set", dest="settings", default="{}", help="VAE and fit settings as a YAML mapping, e.g. '{latent_dim: 32, max_epochs: 300}'")
    f.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    f.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    f.set_defaults(func=run_fit)

    s = dred_sub.add_parser("sample", help="print generated levels in level-file text form")
    s.add_argument("model", help="a model file from `heldout dred fit`")
    s.add_argument("-n", "--num", type=int, default=16, help="how many levels (default 16)")
    s.add_argument("--seed", type=int, default=0, help="seed of the generation (default 0)")
    s.set_defaults(func=run_sample)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def run_fit(args: argparse.Namespace) -> int:
    import torch
    import yaml

    from heldout import envs
    from heldout.generators import save

    try:
        family = envs.get(args.env)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    if args.train_levels is not None and args.train_levels < 1:
        raise UsageError(f"--train-levels must be at least 1, got {args.train_levels}")
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    try:
        settings = yaml.safe_load(args.settings) or {}
    except yaml.YAMLError as err:
        from heldout.trainer.config import yaml_problem

        raise UsageError(f"--set is not valid YAML ({yaml_problem(err)})") from None
    space = family.level_space()
    if args.levels in family.level_set_names:
        num_train = args.train_levels if args.train_levels is not None else _train_levels_of_preset(args.env)
        levels = family.level_set(args.levels, num_train_levels=num_train, level_seed=args.level_seed)
    elif Path(args.levels).is_file():
        levels = space.read_levels(args.levels)
    else:
        raise UsageError(
            f"{family.name} has no level set {args.levels!r} and no file of that name exists; "
            f"choose one of {', '.join(family.level_set_names)} or a level file"
        )
    codes = encode_levels(space, levels, f"level set {levels.name!r}")
    configs(settings, codes.shape[1:])
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name such as {out / 'model.pt'}")
    torch.set_num_threads(args.threads)
    tb = Path(args.tb) if args.tb else out.with_name(out.stem + "-tb")
    meta = {"env": family.name, "env_options": {}, "levels": levels.name, "level_seed": args.level_seed}
    dred, seconds = fit_model(codes, settings, meta, tb_dir=tb, progress=not args.no_progress)
    from heldout.generators.measure import report_lines

    counts = validity(dred, space)
    dred.fit_summary["validity"] = counts
    dred.fit_summary["generator"] = generator_measures(dred, space)
    save(dred, out)
    total = counts["valid"] + counts["dropped"]
    print(summary_line(dred, seconds))
    print(
        f"generated {total} levels: {counts['valid']} handed out ({counts['valid'] / total:.0%}; "
        f"{counts['solvable']} solvable, {counts['repaired']} repaired), {counts['dropped']} dropped (invalid)"
    )
    for line in report_lines(dred.fit_summary["generator"], dred.model.config.decode):
        print(line)
    print(f"wrote {out} (TensorBoard: {tb})")
    return 0


def _train_levels_of_preset(env_name: str) -> int:
    """How many training levels ``heldout train --env ENV`` plays: its preset's ``env.num_train_levels``
    (the maze preset's 25), so a model fitted with the defaults is the one such a run accepts."""
    from heldout.trainer import config

    return config.preset(config.preset_for_env(env_name)).env.num_train_levels


def run_sample(args: argparse.Namespace) -> int:
    from heldout import envs
    from heldout.generators import LevelGenerator, load

    if args.num < 1:
        raise UsageError(f"-n must be at least 1, got {args.num}")
    dred = load(args.model)
    try:
        family = envs.get(dred.meta.get("env", "maze"))
    except KeyError as err:
        raise UsageError(f"{args.model} was fitted on levels of an unknown env: {err.args[0]}") from None
    space = family.level_space(**dict(dred.meta.get("env_options") or {}))
    generator = LevelGenerator(dred.model, space, dred.levels)
    rng = np.random.default_rng(args.seed)
    levels: list[Any] = []
    for _ in range(max(10, args.num)):
        levels.extend(generator(rng, args.num - len(levels)))
        if len(levels) >= args.num:
            break
    if len(levels) < args.num:
        raise UsageError(f"the model made only {len(levels)} valid levels in {generator.counts}; fit it again")
    print("\n\n".join(space.format(lv).strip("\n") for lv in levels[: args.num]))
    c = generator.counts
    print(f"valid {c['valid']} ({c['solvable']} solvable, {c['repaired']} repaired), dropped {c['dropped']}", file=sys.stderr)
    return 0
