"""DRED model files: a fitted level VAE with its config and the levels it was fitted on.

A model file is ``torch.save`` of plain data only (read back with ``weights_only=True``):

=================  ==================================================================
``format``         ``"heldout-dred-vae-v1"``
``config``         the :class:`VAEConfig` as a dict
``fit``            the :class:`FitConfig` as a dict and the fit's summary (``best_epoch``...)
``state``          the model's weights (tensors)
``levels``         (N, H, W) uint8 code grids of every training level, in set order
``holdout``        indices of the levels held out for early stopping
``fingerprints``   a SHA-256 hex digest per training level (see :func:`fingerprint`)
``meta``           JSON-able notes from the caller (the env, its options, the level set)
=================  ==================================================================

Files are written to a temporary name, fsynced and renamed into place.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heldout import safe_write
from heldout.generators.fit import FitConfig
from heldout.generators.vae import LevelVAE, VAEConfig

FORMAT = "heldout-dred-vae-v1"


def fingerprint(codes: np.ndarray) -> str:
    """SHA-256 of a level's code grid (its shape included): equal exactly for equal levels."""
    arr = np.ascontiguousarray(np.asarray(codes, dtype=np.uint8))
    header = f"{arr.shape[0]}x{arr.shape[1]}:".encode()
    return hashlib.sha256(header + arr.tobytes()).hexdigest()


@dataclass
class DREDModel:
    """A fitted VAE and the training levels (code grids) it belongs to."""

    model: LevelVAE
    levels: np.ndarray
    holdout: list[int]
    fit_config: FitConfig = field(default_factory=FitConfig)
    fit_summary: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprints(self) -> list[str]:
        return [fingerprint(c) for c in self.levels]


def save(dred: DREDModel, path: str | Path) -> None:
    path = Path(path)
    safe_write.make_dirs(path.parent)
    payload = {
        "format": FORMAT,
        "config": dred.model.config.to_dict(),
        "fit": {"config": asdict(dred.fit_config), "summary": dred.fit_summary},
        "state": {k: v.detach().cpu().clone() for k, v in dred.model.state_dict().items()},
        "levels": torch.as_tensor(np.asarray(dred.levels, dtype=np.uint8)),
        "holdout": [int(i) for i in dred.holdout],
        "fingerprints": dred.fingerprints,
        "meta": dred.meta,
    }
    buffer = io.BytesIO()  # serialised in memory: a full disk then fails as an OSError with its cause
    torch.save(payload, buffer)
    safe_write.replace_bytes(path, buffer.getvalue())


def load(path: str | Path) -> DREDModel:
    """Read a model file; a missing, damaged or foreign file raises one clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no DRED model file at {path}; fit one with `heldout dred fit --out {path}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or pickled-object files all land here
        raise ValueError(
            f"{path} is not a readable DRED model file ({type(err).__name__}); fit it again with `heldout dred fit`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a DRED model file ({FORMAT}); fit one with `heldout dred fit`")
    try:
        config = VAEConfig.from_dict(dict(payload["config"]))
        model = LevelVAE(config)
        model.load_state_dict(payload["state"])
        model.eval()
        levels = np.asarray(payload["levels"].numpy(), dtype=np.uint8)
        fit_config = FitConfig(**dict(payload["fit"]["config"]))
        dred = DREDModel(
            model,
            levels,
            [int(i) for i in payload["holdout"]],
            fit_config,
            dict(payload["fit"]["summary"]),
            dict(payload["meta"]),
        )
        if levels.ndim != 3 or levels.shape[1:] != (config.height, config.width):
            raise ValueError("levels do not match the model's grid size")
        if list(payload["fingerprints"]) != dred.fingerprints:
            raise ValueError("the stored fingerprints do not match the stored levels")
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise ValueError(f"{path} is a damaged DRED model file ({err}); fit it again with `heldout dred fit`") from None
    return dred
