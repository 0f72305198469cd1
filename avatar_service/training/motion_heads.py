"""Fitting the speech -> motion model's parts (model/motion.py) on standardised window features:
the PCA projection, a linear probe (ridge, closed form), small MLP heads (torch, CPU, seconds to a
few minutes), and the per-clip audio/video offsets that clean the training targets.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from avatar_service.model.motion import Head


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    hidden: int = 64  # 0: a linear head
    epochs: int = 20
    batch: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    dropout: float = 0.5
    input_dropout: float = 0.2
    label_smoothing: float = 0.1  # classification heads
    seeds: int = 1  # an ensemble of this many, averaged into one head (hidden layers concatenated)
    first_seed: int = 0  # members use torch seeds first_seed .. first_seed + seeds - 1 (another draw: seed noise)
    threads: int = 1  # torch threads: the 2-core machine is shared


def projection(states: np.ndarray, dims: int, max_rows: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """PCA of encoder states (N, D) -> (proj (D, dims), mean (D,))."""
    mean = states.mean(0)
    _, _, vt = np.linalg.svd(states[:: max(1, len(states) // max_rows)] - mean, full_matrices=False)
    return vt[:dims].T.astype(np.float32), mean.astype(np.float32)


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float = 30.0) -> Head:
    """Linear head on standardised features; `ridge` is a per-sample penalty (bias unpenalised)."""
    xa = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    reg = ridge * len(x) * np.eye(xa.shape[1])
    reg[-1, -1] = 0
    w = np.linalg.solve(xa.T @ xa + reg, xa.T @ y.astype(np.float64))
    return Head([(w[:-1].astype(np.float32), w[-1].astype(np.float32))])


def fit_mlp(x: np.ndarray, y: np.ndarray, cfg: HeadConfig, classes: int = 0, weight_dir: np.ndarray | None = None,
            direction_weight: float = 1.0, log=None) -> Head:
    """One-hidden-layer MLP. Regression (classes=0): MSE on y (N, K), plus `direction_weight` x the
    squared error along `weight_dir` (K,) (the mouth-opening direction, which the score reads).
    Classification: y (N,) int labels, cross-entropy with label smoothing. Ensembles average: the
    seeds' hidden layers are concatenated and their output layers scaled by 1/seeds, so the result
    is still one Head (for classification the logits are averaged)."""
    import torch

    torch.set_num_threads(cfg.threads)
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long if classes else torch.float32)
    out_dims = classes or y.shape[1]
    g = None if weight_dir is None else torch.tensor(weight_dir / np.linalg.norm(weight_dir), dtype=torch.float32)
    parts = []
    for seed in range(cfg.seeds):
        torch.manual_seed(cfg.first_seed + seed)
        net = torch.nn.Sequential(torch.nn.Dropout(cfg.input_dropout), torch.nn.Linear(x.shape[1], cfg.hidden),
                                  torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(cfg.dropout),
                                  torch.nn.Linear(cfg.hidden, out_dims))
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        n_batches = max(1, len(xt) // cfg.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * n_batches)
        ce = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        for epoch in range(cfg.epochs):
            perm = torch.randperm(len(xt))
            for b in range(n_batches):
                i = perm[b * cfg.batch:(b + 1) * cfg.batch]
                p = net(xt[i])
                if classes:
                    loss = ce(p, yt[i])
                else:
                    e = p - yt[i]
                    loss = (e ** 2).mean() + (direction_weight * ((e @ g) ** 2).mean() if g is not None else 0.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            if log is not None and (epoch + 1) % 10 == 0:
                log(f"seed {seed} epoch {epoch + 1}/{cfg.epochs} loss {loss.item():.3f}")
        lin1, lin2 = net[1], net[4]
        parts.append((lin1.weight.detach().numpy().T, lin1.bias.detach().numpy(),
                      lin2.weight.detach().numpy().T, lin2.bias.detach().numpy()))
    w1 = np.concatenate([p[0] for p in parts], 1)
    b1 = np.concatenate([p[1] for p in parts])
    w2 = np.concatenate([p[2] for p in parts], 0) / len(parts)
    b2 = np.mean([p[3] for p in parts], 0)
    return Head([(w1.astype(np.float32), b1.astype(np.float32)), (w2.astype(np.float32), b2.astype(np.float32))])


def lag_correlations(pred: np.ndarray, measured: np.ndarray, max_lag: int) -> np.ndarray:
    """r of pred shifted by each lag in [-max_lag, max_lag] (pred[t - d] against measured[t]) on the
    frames every lag covers."""
    ok = np.isfinite(measured)
    ok[:max_lag] = False
    ok[len(ok) - max_lag:] = False
    out = []
    for d in range(-max_lag, max_lag + 1):
        q = np.roll(pred, d)
        out.append(np.corrcoef(q[ok], measured[ok])[0, 1] if ok.sum() > 5 and np.std(q[ok]) > 0 else np.nan)
    return np.array(out)


def sync_offsets(x: list[np.ndarray], y: list[np.ndarray], opening: list[np.ndarray], groups: list[str],
                 direction: np.ndarray, folds: int = 4, max_lag: int = 8, ridge: float = 30.0) -> list[tuple[int, float]]:
    """Each training clip's audio/video offset, as SyncNet-style data cleaning does: a linear probe
    fitted on the other people (`folds` folds by `groups`) predicts the clip's mouth opening (its
    motion along `direction`); the lag with the best correlation to the measured opening is the
    clip's offset. Returns (offset in frames, r at that offset) per clip; `shift(targets, offset)`
    realigns a clip's targets with its audio."""
    names = sorted(set(groups))
    out: list[tuple[int, float]] = [(0, float("nan"))] * len(x)
    for f in range(folds):
        held = set(names[f::folds])
        fit_rows = [i for i, g in enumerate(groups) if g not in held]
        xs = np.concatenate([x[i][np.isfinite(y[i]).all(1)] for i in fit_rows])
        ys = np.concatenate([y[i][np.isfinite(y[i]).all(1)] for i in fit_rows])
        head = fit_ridge(xs, ys, ridge)
        for i, g in enumerate(groups):
            if g in held:
                r = lag_correlations(head(x[i]) @ direction, opening[i], max_lag)
                k = int(np.nanargmax(r)) if np.isfinite(r).any() else max_lag
                out[i] = (k - max_lag, float(r[k]))
    return out
