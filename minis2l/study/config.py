"""What defines a study: :class:`StudyConfig`, its scales, and the pretraining it hands out.

The settings of each scale come from the modality (:attr:`minis2l.modality.Modality.scales`):
audio has ``fast`` (CI, seconds), ``demo`` (``make demo``, part of the SoundFont pool, minutes)
and ``full`` (``make study``, the whole pool, the committed ``results/``); images and video
have ``fast`` and ``demo`` (a few minutes each, committed in ``results/image`` and
``results/video``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from minis2l import modality as M
from minis2l.finetune import FinetuneConfig
from minis2l.pretrain import PretrainConfig

#: The four encoders of every seed.
METHODS = ("random", "jigsaw", "rank", "supervised")
#: Label fractions of the linear-probe regimes.
PROBE_FRACTIONS = (0.01, 0.1, 1.0)
#: The paired differences reported (first minus second).
PAIRS = (("rank", "jigsaw"), ("rank", "random"))
#: Encoders the patch-type ablation and the layer probes train on the other patch types.
ABLATION_METHODS = ("random", "rank")
#: Fields that are options of a modality's loader (:attr:`minis2l.modality.Modality.options`).
LOADER_OPTIONS = ("soundfonts", "pitch_step", "images")
#: Every scale any modality defines, for ``--scale``.
SCALES = tuple(dict.fromkeys(s for m in M.MODALITIES.values() for s in m.scales))


@dataclass
class StudyConfig:
    """Everything that defines a study run (stored under ``config`` in ``results.json``).

    Loader options, each for the modalities whose loader takes it (:data:`LOADER_OPTIONS`):
    ``soundfonts``: ``"pool"`` (every installed pool SoundFont), ``"pool:N"`` (the first N of
    the pool), ``"default"`` (pretty_midi's TimGM6mb) or a list of paths; ``pitch_step``:
    semitones between rendered pitches; ``images``: a folder of Fashion-MNIST IDX files
    (default: Debian's). ``probe_subsets``: label subsets averaged at 1 %.
    ``finetune_fractions``: label fractions of the fine-tuning regimes (empty: none). ``fast``
    uses the fast-mode data set. ``ablations``: the patch-type ablation and the layer probes
    (for modalities with :attr:`~minis2l.modality.Modality.ablation_kinds`). ``methods``: the
    encoders each seed trains (the study reads all four; the permutation sweep fewer);
    ``probe_fractions``: the label fractions of the linear probes. ``plateau``: each encoder's
    pretraining stops once its valid metric levels off (:class:`PretrainConfig`; None: every
    epoch). ``jigsaw_epochs``, ``jigsaw_lr``: a pretraining budget of jigsaw's own (None: the
    study's ``epochs`` and ``lr``), for a modality where the shared budget does not let it learn;
    choose it on valid.
    """

    scale: str = "demo"
    seeds: int = 3
    patches: str = "freq"
    num_patches: int = 6
    perm_set_size: int = 100
    epochs: int = 3
    soundfonts: str | list[str] = "default"
    pitch_step: int = 4
    probe_subsets: int = 5
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    ablations: bool = True
    fast: bool = False
    device: str = "auto"
    modality: str = M.DEFAULT
    batch_size: int = 64
    lr: float = 2e-3
    finetune_fractions: list[float] = field(default_factory=lambda: [0.01, 0.1])
    images: str | None = None
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    probe_fractions: list[float] = field(default_factory=lambda: list(PROBE_FRACTIONS))
    plateau: float | None = None
    jigsaw_epochs: int | None = None
    jigsaw_lr: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.finetune, dict):
            self.finetune = FinetuneConfig(**self.finetune)
        self.finetune_fractions = [float(f) for f in self.finetune_fractions]
        modality = M.get(self.modality)
        if self.ablations and not modality.ablation_kinds:
            raise ValueError(
                f"ablations: the {self.modality} modality has no patch-type ablation (modalities "
                f"with one: {', '.join(m.name for m in M.MODALITIES.values() if m.ablation_kinds)})"
            )
        defaults = {f.name: f.default for f in fields(self)}
        for name in LOADER_OPTIONS:
            if name not in modality.options and getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"{name} is for the {M.taking(name)} modality, not {self.modality} "
                    f"(got {getattr(self, name)!r})"
                )
        self.methods = list(self.methods)
        self.probe_fractions = [float(f) for f in self.probe_fractions]
        if not self.methods or not set(self.methods) <= set(METHODS):
            raise ValueError(f"methods must be some of {METHODS}, got {self.methods!r}")
        if not self.probe_fractions or not all(0 < f <= 1 for f in self.probe_fractions):
            raise ValueError(f"probe_fractions must be in (0, 1], got {self.probe_fractions!r}")
        if self.jigsaw_epochs is not None and self.jigsaw_epochs < 1:
            raise ValueError(f"jigsaw_epochs must be at least 1, got {self.jigsaw_epochs}")
        if self.jigsaw_lr is not None and not self.jigsaw_lr > 0:
            raise ValueError(f"jigsaw_lr must be > 0, got {self.jigsaw_lr}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.patches not in modality.kinds:
            raise ValueError(
                f"patches must be one of {modality.kinds} for {self.modality}, got {self.patches!r}"
            )

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> StudyConfig:
        """The settings of ``scale`` for the ``modality`` in ``overrides`` (default: audio),
        with ``overrides`` on top."""
        modality = M.get(overrides.get("modality", M.DEFAULT))
        if scale not in modality.scales:
            raise ValueError(
                f"unknown scale {scale!r} for {modality.name}; choose from "
                f"{', '.join(modality.scales)}"
            )
        base = {
            "modality": modality.name,
            "patches": modality.patches,
            "num_patches": modality.num_patches,
            "ablations": bool(modality.ablation_kinds),
        }
        return cls(**{**base, **modality.scales[scale], "scale": scale, **overrides})

    def loader_options(self) -> dict[str, Any]:
        """The options this config hands its modality's loader."""
        taken = M.get(self.modality).options
        return {name: getattr(self, name) for name in LOADER_OPTIONS if name in taken}

    def patch_kinds(self) -> list[str]:
        """The main patch kind, then the others the patch-type ablation trains (if any)."""
        others = [k for k in M.get(self.modality).ablation_kinds if k != self.patches]
        return [self.patches, *others] if self.ablations else [self.patches]

    def pretrain_config(
        self, method: str, kind: str, seed: int, data: str | None
    ) -> PretrainConfig:
        """The pretraining of one encoder: this study's shared settings (every field the two
        configs have in common), with ``method``'s head (the random encoder is an untrained
        rank model), ``kind`` patches, ``seed``, on the items that ``data`` loads; jigsaw with
        its own budget where ``jigsaw_epochs`` or ``jigsaw_lr`` is set."""
        shared = {f.name for f in fields(PretrainConfig)} & {f.name for f in fields(self)}
        own = {}
        if method == "jigsaw":
            own = {"epochs": self.jigsaw_epochs, "lr": self.jigsaw_lr}
        return PretrainConfig(
            **{name: getattr(self, name) for name in shared}
            | {k: v for k, v in own.items() if v is not None}
            | {
                "method": "rank" if method == "random" else method,
                "patches": kind,
                "seed": seed,
                "data": data,
            }
        )
