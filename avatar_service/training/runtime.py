"""Where training runs: device, precision, processes (torchrun/DDP), checkpoints and logs."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import time

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


@dataclasses.dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    bf16: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self):
        """bf16 autocast where asked; a no-op context in fp32 so the same code runs everywhere."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def wrap(self, module: nn.Module) -> nn.Module:
        """DDP around the trainable module when several processes run; the module itself otherwise."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """Average a scalar over processes (for logging)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def check_in_sync(self, module: nn.Module) -> None:
        """DDP keeps replicas identical; verify it once at the end, so a silent desync cannot pass."""
        if not self.distributed:
            return
        with torch.no_grad():
            s = torch.stack([p.detach().double().sum() for p in module.parameters()]).to(self.device)
            lo, hi = s.clone(), s.clone()
            dist.all_reduce(lo, op=dist.ReduceOp.MIN)
            dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if not torch.allclose(lo, hi, rtol=1e-6, atol=1e-6):
            raise RuntimeError("DDP replicas diverged: parameters differ between processes")

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def setup_runtime(device: str | None, bf16: bool) -> Runtime:
    """One process per device; torchrun sets RANK/WORLD_SIZE/LOCAL_RANK for several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda but no CUDA device is visible; use --device cpu")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif kind == "cpu":
        dev = torch.device("cpu")
    else:
        raise ValueError(f"--device {kind!r}: use cpu or cuda")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(device=dev, rank=rank, world=world, bf16=bf16)


class Checkpoints:
    """RUN_DIR/checkpoints/step_00001000.pt: everything needed to continue (model, optimizer, step)."""

    def __init__(self, run_dir: pathlib.Path, keep: int = 2):
        self.dir = run_dir / CHECKPOINT_DIR
        self.keep = keep

    def all(self) -> list[pathlib.Path]:
        return sorted(self.dir.glob("step_*.pt")) if self.dir.exists() else []

    def latest(self) -> pathlib.Path | None:
        found = self.all()
        return found[-1] if found else None

    def save(self, step: int, state: dict) -> pathlib.Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"step_{step:08d}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint behind
        for old in self.all()[: -self.keep]:
            old.unlink()
        return path

    def load(self, path: pathlib.Path | None = None) -> dict:
        path = path or self.latest()
        if path is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {self.dir}")
        return torch.load(path, map_location="cpu", weights_only=False)


class Logger:
    """Scalars to TensorBoard and to train_log.jsonl (main process only)."""

    def __init__(self, run_dir: pathlib.Path, enabled: bool):
        self.enabled = enabled
        self.writer = None
        self.jsonl = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            self.jsonl = open(run_dir / "train_log.jsonl", "a")
        self.t0 = time.perf_counter()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.jsonl.write(json.dumps({"step": step, **{k: round(float(v), 6) for k, v in values.items()}}) + "\n")
        self.jsonl.flush()

    def image(self, step: int, tag: str, rgb) -> None:
        if self.enabled:
            self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self.jsonl.close()


@contextlib.contextmanager
def eval_mode(*modules: nn.Module):
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)
