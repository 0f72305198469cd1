"""The one training loop every stage runs through: sample a batch, step, log, checkpoint, sample."""
from __future__ import annotations

import logging
import pathlib
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from avatar_service.training.config import TrainConfig
from avatar_service.training.runtime import Checkpoints, Logger, Runtime

log = logging.getLogger(__name__)


class Stage:
    """What a stage provides to `train`. `trainable` holds exactly the optimised parameters; `loss`
    must run them through `model` (the DDP-wrapped `trainable`) so gradients are synchronised."""

    name = "stage"
    trainable: nn.Module

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Hook after each optimizer step (EMA)."""

    def state_dict(self) -> dict:
        raise NotImplementedError

    def write_samples(self, step: int, logger: Logger) -> None:
        """Main process only."""

    def finish(self, logger: Logger) -> pathlib.Path:
        """Main process only: save the trained model; returns its folder."""
        raise NotImplementedError


def _seed(tc: TrainConfig, rt: Runtime, step: int) -> np.random.Generator:
    # Seeded from the step so a resumed run draws fresh batches instead of replaying the first ones.
    torch.manual_seed(tc.seed * 1_000_003 + rt.rank * 10_007 + step)
    return np.random.default_rng([tc.seed, rt.rank, step])


def train(stage: Stage, rt: Runtime, tc: TrainConfig, run_dir: pathlib.Path, resume_state: dict | None = None) -> pathlib.Path | None:
    """Run `stage` up to tc.steps; returns the saved model folder (main process) or None."""
    params = [p for p in stage.trainable.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    step = 0
    if resume_state is not None:
        opt.load_state_dict(resume_state["optimizer"])
        step = int(resume_state["step"])
    model = rt.wrap(stage.trainable)
    log.info("%s: process %d of %d on %s, %s, from step %d to %d", stage.name, rt.rank, rt.world, rt.device,
             "bf16" if rt.bf16 else "fp32", step, tc.steps)
    ckpts = Checkpoints(run_dir, tc.keep_checkpoints)
    logger = Logger(run_dir, enabled=rt.is_main)
    rng = _seed(tc, rt, step)
    bar = tqdm(total=tc.steps, initial=step, disable=not rt.is_main, desc=f"train {stage.name}", dynamic_ncols=True)
    sums: dict[str, torch.Tensor] = {}
    n, window_s = 0, 0.0
    stage.trainable.train()
    while step < tc.steps:
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = tc.lr * min(1.0, (step + 1) / max(1, tc.warmup_steps))
        batch = stage.batch(rng)
        with rt.autocast():
            loss, logs = stage.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        step += 1
        stage.after_step(step)
        # Logs stay on the device until printed: no per-step host sync, so the CPU prepares the next
        # batch while the GPU still works on this one.
        for k, v in logs.items():
            sums[k] = sums[k] + v.detach().float() if k in sums else v.detach().float()
        n += 1
        at_log = step % tc.log_every == 0 or step == tc.steps
        if rt.device.type == "cuda" and at_log:
            torch.cuda.synchronize(rt.device)
        window_s += time.perf_counter() - t0
        bar.update(1)
        if at_log:
            means = {f"{stage.name}/{k}": rt.mean(float(v) / n) for k, v in sums.items()}
            if not np.isfinite(means[f"{stage.name}/loss"]):
                raise FloatingPointError(f"{stage.name}: loss is not finite by step {step}; lower --lr or check the data")
            means[f"{stage.name}/lr"] = opt.param_groups[0]["lr"]
            means[f"{stage.name}/sec_per_step"] = window_s / n
            logger.scalars(step, means)
            bar.set_postfix(loss=f"{means[f'{stage.name}/loss']:.4f}", s_per_step=f"{window_s / n:.3f}")
            sums, n, window_s = {}, 0, 0.0
        if rt.is_main and step % tc.sample_every == 0 and step < tc.steps:
            stage.write_samples(step, logger)
        if rt.is_main and (step % tc.ckpt_every == 0 or step == tc.steps):
            ckpts.save(step, {"step": step, "stage": stage.state_dict(), "optimizer": opt.state_dict(),
                              "train_config": tc.__dict__})
    bar.close()
    rt.check_in_sync(stage.trainable)
    out = None
    if rt.is_main:
        stage.trainable.eval()
        stage.write_samples(step, logger)
        out = stage.finish(logger)
    logger.close()
    rt.barrier()
    return out
