"""The generator's configuration: frozen data saved as JSON beside the weights.

Two parts, saved as two files of a model folder: the architecture (`config.json`: what the weights
are) and the serving settings (`serving.json`, ServingConfig: how frames are drawn from them:
sampling, mouth calibration, articulation), which can be tuned without touching the weights.
Per-request options (steps, guidance, seed) live in the session config, and server settings in
avatar_service.server.settings.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from avatar_service.face.align import FaceLayout
from avatar_service.model.features import AudioFeatureConfig, LogMelFeatures, MelConfig, WindowSpec


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    # 4 levels = factor 8; narrow high-resolution levels keep the decoder near 9 ms a frame on 2 cores
    block_out_channels: tuple[int, ...] = (16, 32, 64, 64)
    layers_per_block: int = 1
    latent_channels: int = 16  # 4x SD's: a small net trained for an hour blurs lips at 8 (tried)
    norm_num_groups: int = 8
    scaling_factor: float = 1.0  # latents are normalised by training statistics (set after AE training)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


@dataclasses.dataclass(frozen=True)
class AudioEncoderConfig:
    hidden: int = 128  # per-frame feature width (AudioNet output)
    token_dim: int = 128  # cross-attention width
    dropout: float = 0.0
    # Audio -> lip shape: a small head predicts the leading PCA coefficients of the frame's lip landmarks
    # (shape only: per-frame centroid and the clip's mean removed; whitened) and feeds them back as one
    # more token. Training shows the denoiser the measured coefficients instead, so it learns to draw a
    # given lip shape from few minutes of video, and the head learns audio -> lips by plain regression.
    # 0 = off.
    lip_components: int = 8


@dataclasses.dataclass(frozen=True)
class LipMapConfig:
    """Where the lips should be, drawn for the denoiser: the reference's lip landmarks moved by the
    shape the audio predicts, splatted as Gaussians (outer and inner lip, one channel each) at
    1/`downsample` of the region's resolution and folded (space-to-depth) onto the latent grid as extra
    input channels. A global token says *how* the mouth moves; only a picture says *where*, in this
    person's own width and shape (with the token alone the model drew one generic mouth for everyone)."""
    # Off in the default: trained from scratch with it (and shape_aug), 5000 CPU steps scored LMD 0.0589
    # vs 0.0576 without, identity 0.833 vs 0.815 (docs/evaluation.md); the network learnt to read the map
    # only weakly. Kept for bigger runs, where it is the direct way to say where the lips go.
    enabled: bool = False
    downsample: int = 2  # map cells of 2 px: the Gaussians' values carry sub-cell position
    sigma_px: float = 1.5  # in region pixels

    def channels(self, latent_downsample: int) -> int:
        return 2 * (latent_downsample // self.downsample) ** 2 if self.enabled else 0


@dataclasses.dataclass(frozen=True)
class DenoiserConfig:
    block_out_channels: tuple[int, ...] = (48, 96, 128)  # 4.3M params, ~4.5 ms a frame a step on 2 cores
    layers_per_block: int = 1
    attention_head_dim: int = 32
    norm_num_groups: int = 16
    prediction_type: str = "v_prediction"  # v-pred with zero terminal SNR: good 1-4 step samples
    num_train_timesteps: int = 1000
    # > 0: diffuse the residual (z0 - z_ref) / residual_scale instead of z0, so the sample starts from the
    # reference's sharp latent and the network only has to draw what differs (mostly the mouth).
    # Set by the denoiser stage to the residual's measured std; 0 = diffuse z0 itself.
    residual_scale: float = 0.0
    lip_map: LipMapConfig = LipMapConfig()

    def to_latent(self, x, z_ref):
        """Sampled x -> region latent z0 (numpy or torch)."""
        return x * self.residual_scale + z_ref if self.residual_scale > 0 else x

    def to_target(self, z0, z_ref):
        """Region latent z0 -> what the diffusion runs on (inverse of `to_latent`)."""
        return (z0 - z_ref) / self.residual_scale if self.residual_scale > 0 else z0


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    default_steps: int = 4  # the served path
    default_guidance: float = 1.0  # classifier-free guidance on audio; 1 = off (half the compute)
    scheduler: str = "ddim"  # or "dpmsolver++"
    # Where sampling starts, as a fraction of the noise schedule (SDEdit's strength): 1 = pure noise at
    # t = T; below 1 the start is Gaussian noise at that level around the reference (residual 0), so
    # the sample keeps the reference's lips and texture and the steps redraw their shape. `steps`
    # denoiser calls are spread over the part that is run.
    start_strength: float = 1.0

    def make_scheduler(self, denoiser: DenoiserConfig, kind: str | None = None):
        """A fresh scheduler (they hold per-sampling state) for `denoiser`'s training schedule.
        v-prediction on a zero-terminal-SNR schedule with trailing timesteps, so 1 to 4 steps start from
        pure noise correctly (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed")."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        common = dict(num_train_timesteps=denoiser.num_train_timesteps, beta_schedule="scaled_linear",
                      beta_start=0.00085, beta_end=0.012, prediction_type=denoiser.prediction_type,
                      timestep_spacing="trailing", rescale_betas_zero_snr=True)
        kind = kind or self.scheduler
        if kind == "ddim":
            return DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **common)
        if kind in ("dpmsolver++", "dpm"):
            return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", final_sigmas_type="zero", **common)
        raise ValueError(f"unknown scheduler {kind!r}: use 'ddim' or 'dpmsolver++'")

    def timesteps(self, scheduler, steps: int):
        """Set `scheduler` up for `steps` calls from `start_strength` down; returns (timesteps, start
        noise scale)."""
        total = max(steps, int(round(steps / max(self.start_strength, 1e-3))))
        scheduler.set_timesteps(total)
        ts = scheduler.timesteps[-steps:]
        if total == steps:
            return ts, float(scheduler.init_noise_sigma)
        return ts, float((1 - scheduler.alphas_cumprod[int(ts[0])]).sqrt())


@dataclasses.dataclass(frozen=True)
class CalibrationConfig:
    """Per-avatar mouth calibration, width and lip thickness (runtime.calibration): a serving step, no weights."""
    enabled: bool = True  # off: the mouth as drawn (the ablation in docs/evaluation.md)
    probe_frames: int = 4  # silent frames drawn (one noise seed each); their median size is compared
    max_ratio: float = 1.5  # measured sizes further apart than this are a failed measurement, not a bias
    max_scale: float = 1.5  # the rescale is clamped to [1/max_scale, max_scale]: beyond it the face distorts
    refine_rounds: int = 3  # re-measure and refine the width's rescale (mediapipe under-reports changes)
    # How far the rescale reaches from the mouth centre, in reference mouth widths (0.8 of it vertically):
    # full within half of it, none beyond it; 1.25 ends inside the blend ellipse for usual mouth widths
    reach: float = 1.25


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """How a trained generator is run (`serving.json` beside `config.json`); no weights depend on it."""
    sampling: SamplingConfig = SamplingConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    # Serving scales the audio's predicted lip-shape coefficients by this (SadTalker's expression scale):
    # regression pulls them towards the mean, so mouths open about half as wide as real ones. Training
    # never applies it.
    articulation: float = 1.0


# Where format-1 config.json files kept the serving settings, before serving.json existed.
_LEGACY_SERVING = {"sampling": ("sampling",), "calibration": ("calibration",), "articulation": ("audio", "articulation")}


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    name: str = "avatarlab-face"
    layout: FaceLayout = FaceLayout()
    mel: MelConfig = MelConfig()  # sample rate, and the log-mel front end when features.kind is "logmel"
    features: AudioFeatureConfig = AudioFeatureConfig(kind="whisper")
    window: WindowSpec = WindowSpec(mel_radius=4)  # +-80 ms of 50 Hz Whisper states
    autoencoder: AutoencoderConfig = AutoencoderConfig()
    audio: AudioEncoderConfig = AudioEncoderConfig()
    denoiser: DenoiserConfig = DenoiserConfig()
    serving: ServingConfig = ServingConfig()

    @property
    def feature_dims(self) -> int:
        """Channels of one audio feature frame (the AudioNet's input)."""
        return self.mel.n_mels if self.features.kind == "logmel" else self.features.whisper.dims

    def feature_extractor(self, device: str = "cpu"):
        """The audio front end (model.features, model.whisper) the model was trained with; `device`
        "cuda" runs Whisper's encoder on the GPU (loaded once per process and device)."""
        if self.features.kind == "logmel":
            return LogMelFeatures(self.mel)
        if self.features.kind == "whisper":
            from avatar_service.model.whisper import WhisperFeatures

            return WhisperFeatures.shared(self.features.whisper, self.mel.sample_rate_hz, device.split(":")[0])
        raise ValueError(f"unknown audio features {self.features.kind!r}: use 'logmel' or 'whisper'")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of a region latent."""
        h, w = self.layout.region_shape
        f = self.autoencoder.downsample
        return self.autoencoder.latent_channels, h // f, w // f

    def to_dict(self) -> dict[str, Any]:
        """Everything, the serving settings under "serving" (training checkpoints keep this)."""
        return dataclasses.asdict(self)

    def architecture_dict(self) -> dict[str, Any]:
        """What a model folder's config.json holds (serving.json holds `serving`)."""
        d = self.to_dict()
        del d["serving"]
        return d

    def to_json(self) -> str:
        """The model's identity (runtime.models.model_id): architecture and serving settings in the layout
        config.json had before serving.json was split off, so ids, and the avatars stored under them,
        stay what they were."""
        d = self.architecture_dict()
        serving = dataclasses.asdict(self.serving)
        for key, path in _LEGACY_SERVING.items():
            parent = d
            for k in path[:-1]:
                parent = parent[k]
            parent[path[-1]] = serving[key]
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], serving: dict[str, Any] | None = None) -> "GeneratorConfig":
        """A to_dict(), or a config.json's architecture with its serving.json (`serving`); a config.json
        from before serving.json carries the serving settings in their old places."""
        d = json.loads(json.dumps(d))  # a deep copy: the caller's dict is not changed
        legacy = {}
        for key, path in _LEGACY_SERVING.items():
            parent = d
            for k in path[:-1]:
                parent = parent.get(k, {})
            if path[-1] in parent:
                legacy[key] = parent.pop(path[-1])
        if serving is not None or legacy:
            d["serving"] = {**legacy, **d.get("serving", {}), **(serving or {})}

        def build(tp, value):
            if dataclasses.is_dataclass(tp) and isinstance(value, dict):
                hints = {f.name: f.type for f in dataclasses.fields(tp)}
                kwargs = {}
                for f in dataclasses.fields(tp):
                    if f.name in value:
                        default = getattr(tp(), f.name)
                        v = value[f.name]
                        if dataclasses.is_dataclass(default):
                            v = build(type(default), v)
                        elif isinstance(default, tuple):
                            v = tuple(v)
                        kwargs[f.name] = v
                unknown = set(value) - set(hints)
                if unknown:
                    raise ValueError(f"unknown {tp.__name__} keys {sorted(unknown)}: config from a newer version?")
                return tp(**kwargs)
            return value
        return build(cls, d)

    @classmethod
    def tiny(cls) -> "GeneratorConfig":
        """A few-thousand-parameter config of the same architecture, for tests and smoke runs, with the
        optional lip map on so that every test also runs its path."""
        return cls(
            name="avatarlab-face-tiny",
            layout=FaceLayout(crop_px=64),
            features=AudioFeatureConfig(kind="logmel"), window=WindowSpec(mel_radius=8),  # no Whisper load in unit tests
            autoencoder=AutoencoderConfig(block_out_channels=(8, 16, 16), latent_channels=4, norm_num_groups=4),
            audio=AudioEncoderConfig(hidden=32, token_dim=32, lip_components=4),
            denoiser=DenoiserConfig(block_out_channels=(16, 32), attention_head_dim=8, norm_num_groups=4,
                                    residual_scale=0.5, lip_map=LipMapConfig(enabled=True)),
            serving=ServingConfig(sampling=SamplingConfig(default_steps=2)),
        )
