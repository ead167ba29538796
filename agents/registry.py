"""Agents by name: ``make("ppo", env, ppo=PPOConfig(), network=NetworkConfig(), seed=0)``.

An agent builder takes the training env and the two configs and returns a ready
:class:`HeldoutPPO` (or subclass). An agent with settings of its own declares the config
sections it reads (``register("drac", build, sections=("augment", "drac"))``); ``make`` passes
them on by keyword and ``sections(name)`` tells the trainer which ones to hand over.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from heldout.agents.config import NetworkConfig, PPOConfig
from heldout.agents.hyperbolic import HyperbolicActorCriticPolicy, heads_settings
from heldout.agents.networks import GlyphNet, ImpalaCNN, MazeNet, is_symbol_grid, select_network
from heldout.agents.ppo import HeldoutPPO
from heldout.agents.precision import compile_extractors, set_precision
from heldout.names import check_new_name, unknown_name_error


class AgentBuilder(Protocol):
    def __call__(
        self,
        env: VecEnv | gym.Env,
        *,
        ppo: PPOConfig,
        network: NetworkConfig,
        seed: int | None,
        device: th.device,
        tensorboard_log: str | None,
        verbose: int,
    ) -> HeldoutPPO: ...


_AGENTS: dict[str, AgentBuilder] = {}
_SECTIONS: dict[str, tuple[str, ...]] = {}
_NEEDS: dict[str, frozenset[str]] = {}


def register(
    name: str, builder: AgentBuilder, *, replace: bool = False, sections: tuple[str, ...] = (),
    needs: tuple[str, ...] = (),
) -> AgentBuilder:
    """Add an agent builder under ``name``; ``sections``: the config sections it takes by keyword;
    ``needs``: what the trainer must provide beyond an env (``"dataset"``: an offline agent)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"agent names are non-empty strings, got {name!r}")
    check_new_name("agent", name, _AGENTS, builder, replace=replace)
    _AGENTS[name] = builder
    _SECTIONS[name] = tuple(sections)
    _NEEDS[name] = frozenset(needs)
    return builder


def needs(name: str) -> frozenset[str]:
    """What agent ``name`` needs the trainer to provide (``"dataset"`` for offline agents)."""
    if name not in _AGENTS:
        raise unknown_name_error("agent", name, names())
    return _NEEDS[name]


def sections(name: str) -> tuple[str, ...]:
    """The config sections (beyond ``ppo`` and ``network``) that agent ``name`` reads."""
    if name not in _AGENTS:
        raise unknown_name_error("agent", name, names())
    return _SECTIONS[name]


def names() -> list[str]:
    """Every registered agent name, sorted."""
    return sorted(_AGENTS)


def make(
    name: str,
    env: VecEnv | gym.Env,
    *,
    ppo: PPOConfig,
    network: NetworkConfig,
    seed: int | None,
    device: str | th.device = "auto",
    tensorboard_log: str | None = None,
    verbose: int = 0,
    **settings: Any,
) -> HeldoutPPO:
    """Build agent ``name`` on ``env`` (a VecEnv or a single Gymnasium env).

    ``settings``: the agent's own config sections by name (see :func:`sections`), e.g.
    ``augment=AugmentConfig("crop")`` for ``rad``; a section it does not read is an error.

    ``device="auto"`` picks CUDA when available. With ``ppo.normalize_reward`` the env is
    wrapped in ``VecNormalize(norm_obs=False, norm_reward=True)`` with the return discount
    ``ppo.reward_norm_gamma`` (:meth:`PPOConfig.reward_normalizer`) unless it already is; get it back with ``model.get_vec_normalize_env()`` (its statistics belong in
    checkpoints). Unknown names raise ``KeyError`` listing the registered ones.
    """
    if name not in _AGENTS:
        raise unknown_name_error("agent", name, names())
    if not isinstance(ppo, PPOConfig):
        raise TypeError(f"ppo must be a PPOConfig, got {type(ppo).__name__}")
    if not isinstance(network, NetworkConfig):
        raise TypeError(f"network must be a NetworkConfig, got {type(network).__name__}")
    ppo.validate()
    network.validate()
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be an integer >= 0 (or None), got {seed!r}")
    if not isinstance(verbose, int):
        raise ValueError(f"verbose must be an integer, got {verbose!r}")
    foreign = sorted(set(settings) - set(_SECTIONS[name]))
    if foreign:
        raise TypeError(f"agent {name!r} reads no settings {foreign[0]!r}; it reads {list(_SECTIONS[name]) or 'none'}")
    model = _AGENTS[name](
        env,
        ppo=ppo,
        network=network,
        seed=seed,
        device=resolve_device(device),
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        **settings,
    )
    set_precision(model.policy, network.precision, model.device)
    if network.compile:
        compile_extractors(model.policy)
    return model


def resolve_device(device: str | th.device) -> th.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA request is an error."""
    if isinstance(device, str) and device == "auto":
        return th.device("cuda" if th.cuda.is_available() else "cpu")
    try:
        resolved = th.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda (cuda:N)") from None
    if resolved.type == "cuda" and not th.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use cpu or auto")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use auto, cpu or cuda (cuda:N)")
    return resolved


def env_family(env: VecEnv | gym.Env) -> str | None:
    """The heldout env family's name, read through VecEnv wrappers from ``level_space.family``."""
    inner: Any = env
    while isinstance(inner, VecEnvWrapper):
        inner = inner.venv
    family = getattr(getattr(inner, "level_space", None), "family", None)
    return family if isinstance(family, str) and family not in ("", "?") else None


def policy_kwargs(network: NetworkConfig, ppo: PPOConfig, observation_space: gym.spaces.Space,
                  family: str | None = None) -> dict[str, Any]:
    """``policy_kwargs`` for sb3's ``ActorCriticPolicy``: a shared extractor with linear heads
    (with ``network.geometry: hyperbolic``, for :func:`policy_class`'s policy: hyperbolic heads,
    the extractor without its last ReLU, geoopt's RiemannianAdam)."""
    kind = network.network if network.network != "auto" else select_network(observation_space, family)
    hyperbolic = network.geometry == "hyperbolic"
    if kind == "mlp":
        if hyperbolic:
            raise ValueError(
                "network.geometry hyperbolic is built for the impala and maze networks, not mlp; "
                "set network.network impala or maze, or network.geometry euclidean"
            )
        return mlp_policy_kwargs(network, ppo, observation_space)
    if kind == "impala":
        extractor: type = ImpalaCNN
        extractor_kwargs: dict[str, Any] = {
            "features_dim": network.features_dim,
            "channels": tuple(network.impala_channels),
            "channels_last": network.channels_last,
        }
        normalize_images = True  # uint8 pixels -> [0, 1]
    elif kind == "glyphs":
        extractor = GlyphNet
        extractor_kwargs = {
            "features_dim": network.features_dim,
            "embedding_dim": network.glyph_embedding_dim,
            "channels": tuple(network.glyph_channels),
        }
        normalize_images = False  # symbol ids
    else:
        extractor = MazeNet
        extractor_kwargs = {"features_dim": network.features_dim, "channels": tuple(network.maze_channels)}
        normalize_images = False  # small integer codes, not pixels
    _check_space(kind, observation_space)
    kwargs = {
        "features_extractor_class": extractor,
        "features_extractor_kwargs": extractor_kwargs,
        "share_features_extractor": True,
        "net_arch": [],  # linear policy and value heads on the shared features
        "normalize_images": normalize_images,
        "optimizer_kwargs": {"eps": ppo.adam_eps},
    }
    if hyperbolic:
        extractor_kwargs["final_relu"] = False  # the published head maps the linear layer's output
        kwargs.update(heads_settings(network.curvature, network.hyperbolic_clip_norm, network.srym))
    return kwargs


def policy_class(network: NetworkConfig, euclidean: type, hyperbolic: type) -> type:
    """The policy class for ``network.geometry``: ``euclidean`` or its hyperbolic-heads form."""
    return hyperbolic if network.geometry == "hyperbolic" else euclidean


def mlp_policy_kwargs(network: NetworkConfig, ppo: PPOConfig, space: gym.spaces.Space) -> dict[str, Any]:
    """Vector observations: flattened, then separate policy and value MLPs of two
    ``features_dim``-wide tanh layers (a small state-based PPO network)."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"network 'mlp' needs a 1-D Box observation space (a vector), got {space}")
    width = network.features_dim
    return {
        "features_extractor_class": FlattenExtractor,
        "net_arch": {"pi": [width, width], "vf": [width, width]},
        "activation_fn": th.nn.Tanh,
        "normalize_images": False,
        "optimizer_kwargs": {"eps": ppo.adam_eps},
    }


def _check_space(kind: str, space: gym.spaces.Space) -> None:
    if kind == "glyphs":
        if not is_symbol_grid(space):
            raise ValueError(f"network 'glyphs' needs a 2-D Box of integer symbol ids (MiniHack glyphs), got {space}")
        return
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        raise ValueError(
            f"network {kind!r} needs a 3-D Box observation space (an image or a maze grid), got {space}"
        )
    if kind == "maze" and 3 not in (space.shape[0], space.shape[-1]):
        raise ValueError(f"network 'maze' needs 3 channels (wall, goal, direction), got observation shape {space.shape}")


def _make_ppo(
    env: VecEnv | gym.Env,
    *,
    ppo: PPOConfig,
    network: NetworkConfig,
    seed: int | None,
    device: th.device,
    tensorboard_log: str | None,
    verbose: int,
    cls: type[HeldoutPPO] = HeldoutPPO,
    **model_kwargs: Any,
) -> HeldoutPPO:
    """Build ``cls`` (HeldoutPPO or a subclass, given ``model_kwargs``) with the PPO config's settings."""
    venv = HeldoutPPO._wrap_env(env, verbose)
    kwargs = ppo.model_kwargs(venv.num_envs)  # checks the minibatch split before anything is built
    pk = policy_kwargs(network, ppo, venv.observation_space, env_family(venv))
    venv = ppo.reward_normalizer(venv)
    return cls(
        policy_class(network, ActorCriticPolicy, HyperbolicActorCriticPolicy),
        venv,
        policy_kwargs=pk,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        **kwargs,
        **model_kwargs,
    )


register("ppo", _make_ppo)


def _register_offline() -> None:
    from heldout.agents.offline import BCAgent, CQLAgent, _builder

    register("bc", _builder(BCAgent), sections=("offline",), needs=("dataset",))
    register("cql", _builder(CQLAgent), sections=("offline",), needs=("dataset",))


_register_offline()
