"""Image augmentations for RAD, DrAC and UCB-DrAC, found by name.

>>> from heldout.agents import augmentations
>>> augmentations.names()
['colour_jitter', 'crop', 'cutout', 'cutout_colour', 'dropout', 'flip', 'grayscale', 'random_conv', 'rotate', 'translate']
>>> out = augmentations.get("crop")(frames, torch.Generator().manual_seed(0), pad=12)
>>> augmentations.register("invert", lambda x, g: 255 - x)   # your own

Every augmentation takes an (N, H, W, C) uint8 or float batch (CPU or CUDA) and a
``torch.Generator``, and returns a batch of the same shape, dtype and value range
(contract: :mod:`heldout.agents.augmentations.registry`).

Valid on the maze family's symbolic observations (``valid_on_grids()``): ``crop`` and
``translate``, which move the whole view by a cell or so, the agent's own cell with it, so
what lies ahead of the agent stays ahead of it (border cells repeat or show as floor, as
pixels do on Procgen); ``cutout`` and ``dropout``, which hide cells as empty floor. All four
keep every channel a valid code. The others are not invariances there: the view always faces
the way the agent does and the actions turn left / right, so a flip swaps which turn is
which, a rotation shows what lies beside or behind the agent as if it were ahead, and the
colour augmentations mix the wall, goal and direction channels, which are codes, not colours.
"""

from heldout.agents.augmentations import colour, geometric, occlusion
from heldout.agents.augmentations.registry import (
    PIXEL_MAX,
    Augmentation,
    check_on_grids,
    check_params,
    get,
    names,
    register,
    valid_on_grids,
)

_COLOUR = "it mixes or rescales the wall, goal and direction channels, which are codes, not colours"

register("crop", geometric.crop, grids=True)
register("translate", geometric.translate, grids=True)
register(
    "flip",
    geometric.flip,
    why_not_on_grids="it mirrors the egocentric view, which swaps what turn left and turn right do",
)
register(
    "rotate",
    geometric.rotate,
    why_not_on_grids="the egocentric view always faces the agent's way; a rotated one shows what lies beside or "
    "behind the agent as if it were ahead",
)
register("cutout", occlusion.cutout, grids=True)
register("cutout_colour", occlusion.cutout_colour, why_not_on_grids="its random colour writes invalid codes into the "
         "wall, goal and direction channels")
register("dropout", occlusion.dropout, grids=True)
register("grayscale", colour.grayscale, why_not_on_grids=_COLOUR)
register("random_conv", colour.random_conv, why_not_on_grids=_COLOUR)
register("colour_jitter", colour.colour_jitter, why_not_on_grids=_COLOUR)

PUBLISHED = ("crop", "random_conv", "grayscale", "flip", "rotate", "cutout", "cutout_colour", "colour_jitter")
"""The eight augmentations of UCB-DrAC's bandit, in the published order."""

__all__ = [
    "PIXEL_MAX",
    "PUBLISHED",
    "Augmentation",
    "check_on_grids",
    "check_params",
    "get",
    "names",
    "register",
    "valid_on_grids",
]
