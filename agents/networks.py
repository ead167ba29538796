"""Feature extractors shared by the policy and value heads: the IMPALA CNN, the maze network and
the glyphs network (grids of symbol ids, MiniHack's glyphs crop).

Both accept observations in the environment's own layout. Procgen and the maze family emit
(H, W, C) arrays and :class:`heldout.agents.HeldoutPPO` keeps them that way (it does not wrap
the env in ``VecTransposeImage``); a (C, H, W) space, as plain stable-baselines3 produces, is
accepted as well.

Memory format: a batch of (N, H, W, C) frames permuted to (N, C, H, W) already *is* a
``torch.channels_last`` tensor, so the IMPALA CNN reads HWC frames without a copy and, with its
weights in channels_last (see :func:`use_channels_last`), runs its convolutions in the format
oneDNN is fastest in on CPU, in the rollout and in the update alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

MAZE_DIRECTION_CODES = 5
"""Direction channel values of the maze observation: 0 = no agent, 1 + direction (0..3) at the agent."""

PIXEL_MIN_SIDE = 32
"""Images whose spatial sides are all at least this many cells are treated as pixels by ``auto``."""


# -- layouts --------------------------------------------------------------------------------------
def image_is_channels_first(space: gym.spaces.Box) -> bool:
    """Whether a 3-D image space is (C, H, W); the channel axis is the smallest one (as in sb3)."""
    _check_3d(space)
    return int(np.argmin(space.shape)) == 0


def grid_is_channels_first(space: gym.spaces.Box, channels: int = 3) -> bool:
    """Whether a maze grid space is (C, H, W): only when the last axis cannot be the channel axis."""
    _check_3d(space)
    return space.shape[-1] != channels and space.shape[0] == channels


def _check_3d(space: gym.spaces.Space) -> None:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        raise ValueError(f"expected a 3-D Box observation space (an image or a grid), got {space}")


def is_symbol_grid(space: gym.spaces.Space) -> bool:
    """Whether a space is a 2-D grid of integer symbol ids (MiniHack's glyphs crop), read by ``glyphs``."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 2 and np.issubdtype(space.dtype, np.integer)


def select_network(space: gym.spaces.Space, family: str | None = None) -> str:
    """The network ``auto`` picks for an observation space (and, when known, the env family).

    The rule: the maze family (``family`` starting with ``"maze"``) always gets ``"maze"``; a
    1-D Box (a vector) gets ``"mlp"``; a 2-D integer Box (symbol ids) gets ``"glyphs"``; otherwise a 3-D uint8 Box is an image for ``"impala"`` when its two spatial sides are both
    at least :data:`PIXEL_MIN_SIDE` (Procgen's 64x64 frames), and a symbolic grid for ``"maze"``
    when they are smaller (the maze's 5x5 view or its 15x15 full grid). Anything else raises
    ``ValueError``: choose ``network="impala"`` or ``"maze"`` explicitly.
    """
    if family is not None and family.split("/")[0].startswith("maze"):
        return "maze"
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return "mlp"
    if is_symbol_grid(space):
        return "glyphs"
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3 or space.dtype != np.uint8:
        raise ValueError(
            f"network 'auto' cannot choose a network for the observation space {space}: it knows 3-D uint8 "
            "images (impala), maze grids (maze), 2-D integer grids (glyphs) and vectors (mlp); set network to impala "
            "or maze, or add a network for it"
        )
    if family is not None and family.split("/")[0].startswith("procgen"):
        return "impala"
    shape = space.shape
    spatial = shape[1:] if image_is_channels_first(space) else shape[:2]
    return "impala" if min(spatial) >= PIXEL_MIN_SIDE else "maze"


def use_channels_last(module: nn.Module) -> nn.Module:
    """Convert a module's 4-D parameters to ``torch.channels_last`` in place (the Parameter objects stay)."""
    return module.to(memory_format=th.channels_last)


# -- IMPALA CNN -----------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """x + conv(relu(conv(relu(x)))), both convs 3x3 with the same channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: th.Tensor) -> th.Tensor:
        # Not in place: the input is needed for the skip connection and by autograd.
        return x + self.conv1(F.relu(self.conv0(F.relu(x))))


class ConvStack(nn.Module):
    """conv 3x3 -> max-pool 3x3 stride 2 (padding 1) -> two residual blocks."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.res0 = ResidualBlock(out_channels)
        self.res1 = ResidualBlock(out_channels)

    def forward(self, x: th.Tensor) -> th.Tensor:
        x = F.max_pool2d(self.conv(x), kernel_size=3, stride=2, padding=1)
        return self.res1(self.res0(x))

    @staticmethod
    def out_side(side: int) -> int:
        """Spatial side after the stride-2 pool: ceil(side / 2)."""
        return (side + 1) // 2


class ImpalaCNN(BaseFeaturesExtractor):
    """The IMPALA CNN of the Procgen baseline: conv stacks, then ReLU, flatten, linear, ReLU.

    Expects pixel observations already scaled to [0, 1] (the policy's ``normalize_images``),
    in (N, H, W, C) or (N, C, H, W) layout as its ``observation_space`` says. ``final_relu=False``
    leaves out the last ReLU (the hyperbolic head maps the linear layer's output onto the ball).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 256,
        channels: Sequence[int] = (16, 32, 32),
        channels_last: bool = True,
        final_relu: bool = True,
    ) -> None:
        super().__init__(observation_space, features_dim)
        self.final_relu = bool(final_relu)
        self.hwc = not image_is_channels_first(observation_space)
        shape = observation_space.shape
        in_channels, height, width = (shape[2], shape[0], shape[1]) if self.hwc else shape
        self.channels_last = bool(channels_last)
        stacks = []
        for out_channels in channels:
            stacks.append(ConvStack(in_channels, out_channels))
            in_channels = out_channels
            height, width = ConvStack.out_side(height), ConvStack.out_side(width)
        self.stacks = nn.Sequential(*stacks)
        self.flat_dim = in_channels * height * width
        self.linear = nn.Linear(self.flat_dim, features_dim)

    def to_nchw(self, observations: th.Tensor) -> th.Tensor:
        """The batch as a logical (N, C, H, W) tensor in the memory format the convs run in."""
        x = observations.permute(0, 3, 1, 2) if self.hwc else observations
        fmt = th.channels_last if self.channels_last else th.contiguous_format
        return x.contiguous(memory_format=fmt)  # no copy for permuted HWC frames in channels_last

    def forward(self, observations: th.Tensor) -> th.Tensor:
        x = self.stacks(self.to_nchw(observations))
        # flatten reads logical (C, H, W) order whatever the memory format, so the linear layer's
        # weights mean the same thing in both formats.
        x = self.linear(th.flatten(F.relu(x), 1))
        return F.relu(x) if self.final_relu else x


# -- maze network ---------------------------------------------------------------------------------
class MazeNet(BaseFeaturesExtractor):
    """A small conv + MLP extractor for the maze family's symbolic observations.

    Input channels (integers, not pixels: the policy must use ``normalize_images=False``):
    0 wall (0/1), 1 goal (0/1), 2 agent direction code 0..4. The code is one-hot encoded, giving
    2 + 5 planes, followed by 3x3 convs (padding 1, ReLU), flatten, linear, ReLU (left out with
    ``final_relu=False``, as for the hyperbolic head).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 256,
        channels: Sequence[int] = (16, 32),
        final_relu: bool = True,
    ) -> None:
        super().__init__(observation_space, features_dim)
        self.final_relu = bool(final_relu)
        self.chw = grid_is_channels_first(observation_space)
        shape = observation_space.shape
        n_in, height, width = shape if self.chw else (shape[2], shape[0], shape[1])
        if n_in != 3:
            raise ValueError(
                f"the maze network expects 3 channels (wall, goal, direction), got observation shape {shape}"
            )
        layers: list[nn.Module] = []
        in_planes = 2 + MAZE_DIRECTION_CODES
        for out_planes in channels:
            layers += [nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1), nn.ReLU()]
            in_planes = out_planes
        self.convs = nn.Sequential(*layers)
        self.flat_dim = in_planes * height * width
        self.linear = nn.Linear(self.flat_dim, features_dim)

    def planes(self, observations: th.Tensor) -> th.Tensor:
        """(N, 7, H, W) float planes: wall, goal, one-hot direction code."""
        x = observations if not self.chw else observations.permute(0, 2, 3, 1)  # -> (N, H, W, 3)
        code = x[..., 2].round().long().clamp_(0, MAZE_DIRECTION_CODES - 1)
        onehot = F.one_hot(code, MAZE_DIRECTION_CODES).to(x.dtype)
        planes = th.cat([x[..., :2], onehot], dim=-1)
        return planes.permute(0, 3, 1, 2).contiguous()

    def forward(self, observations: th.Tensor) -> th.Tensor:
        x = self.linear(th.flatten(self.convs(self.planes(observations.float())), 1))
        return F.relu(x) if self.final_relu else x


# -- glyphs network ---------------------------------------------------------------------------
class EmbedIds(nn.Module):
    """Integer ids (given as floats: exact up to 2**24) -> one learned vector per id, appended as the last axis."""

    def __init__(self, count: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(count, dim)

    def forward(self, ids: th.Tensor) -> th.Tensor:
        return self.embed(ids.long())


def symbol_count(space: gym.spaces.Box) -> int:
    """How many symbol ids a grid space holds (``0 .. high``)."""
    if not is_symbol_grid(space) or int(np.min(space.low)) < 0:
        raise ValueError(f"expected a 2-D Box of non-negative integer symbol ids (e.g. MiniHack glyphs), got {space}")
    return int(np.max(space.high)) + 1


class GlyphNet(BaseFeaturesExtractor):
    """Embedded symbol ids, then 3x3 convs (padding 1) with ELU, flatten, linear, ReLU: the crop branch
    of the NetHack agents used with MiniHack (an embedding per glyph id, five convs of 16, 16, 16, 16
    and 8 channels). Input: (N, H, W) integer ids, given as floats."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 256,
        embedding_dim: int = 64,
        channels: Sequence[int] = (16, 16, 16, 16, 8),
        final_relu: bool = True,
    ) -> None:
        super().__init__(observation_space, features_dim)
        self.final_relu = bool(final_relu)
        self.embed = EmbedIds(symbol_count(observation_space), embedding_dim)
        layers: list[nn.Module] = []
        in_planes = embedding_dim
        for out_planes in channels:
            layers += [nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1), nn.ELU()]
            in_planes = out_planes
        self.convs = nn.Sequential(*layers)
        height, width = observation_space.shape
        self.linear = nn.Linear(in_planes * height * width, features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        planes = self.embed(observations).permute(0, 3, 1, 2)  # (N, H, W, E) -> (N, E, H, W)
        x = self.linear(th.flatten(self.convs(planes), 1))
        return F.relu(x) if self.final_relu else x
