"""Level generators that need torch: DRED's generative model of the training levels.

They see levels only through a family's ``LevelSpace`` (``encode`` / ``decode`` /
``is_solvable``) and import no environment and no agent. The trainer builds a generator and
hands it to the ``dred`` level sampler as a plain callable ``generator(rng, n) -> levels``.

>>> from heldout.generators import VAEConfig, FitConfig, fit, LevelGenerator
>>> result = fit(codes, VAEConfig(height=13, width=13), FitConfig(max_epochs=200))
>>> generate = LevelGenerator(result.model, space, train_levels)
>>> new_levels = generate(np.random.default_rng(0), 16)
"""

from heldout.generators.fit import FitConfig, FitResult, fit, reconstruction_accuracy
from heldout.generators.generate import LevelGenerator
from heldout.generators.model_file import DREDModel, fingerprint, load, save
from heldout.generators.vae import LevelVAE, VAEConfig, slerp

__all__ = [
    "DREDModel",
    "FitConfig",
    "FitResult",
    "LevelGenerator",
    "LevelVAE",
    "VAEConfig",
    "fingerprint",
    "fit",
    "load",
    "reconstruction_accuracy",
    "save",
    "slerp",
]
