"""Chooses the student's blend weight (StudentConfig.blend: image sessions serve (1 - w) teacher + w student,
runtime/warp_renderer.py MotionModel) and the closed-mouth map's form (face/motion.py) without the val clips: 4-fold cross-validation by person over the
dataset's train split. Per fold, a teacher (`train motion`'s fit, viseme head included) and its student
(`train motion-student`'s fit) are trained without that fold's people, and both predict the fold's clips;
the weight with the best mean opening r on all 48 held-out training clips (their measured opening realigned
by the teacher's sync offsets, as training realigns it) is the one to ship. Also prints the lip distance.

    .venv/bin/python tools/student_blend_cv.py DATASET [--out DIR] [--folds 0,1,2,3] [--score] [--closed-maps]

About 5 min a fold on the 2-core machine once the caches of `train motion` and `train motion-student` exist
(run two processes with --folds 0,1 and --folds 2,3, then once more with --score). Each fold's motion basis,
its PCA and its closed-mouth map, is fitted without the fold's people too (before 2026-12-07 it was not, and
the closed-mouth map had seen the people it was scored on). Result (docs/speech_to_motion.md), opening r: 0.0
0.625, 0.2 0.643, 0.3 0.648, 0.4 0.651, 0.5 0.650; lip distance -16.7% of the still mouth's at 0.0, -17.1% at
0.4. With --closed-maps, at 0.4: linear map -13.4%, linear ridge 0.1 -14.3%, quadratic -14.6%, quadratic
ridge 0.1 / 0.3 / 1 -16.6% / -17.1% / -14.7% (0.3 is `MotionBasis.fit`'s default)."""
import argparse
import dataclasses
import json
import pathlib

import numpy as np

from avatar_service.data import motion_clips
from avatar_service.data.av_sync import shift
from avatar_service.face.mesh import mouth_opening
from avatar_service.face.motion import MotionBasis, fit_closed_map
from avatar_service.training import motion as tm
from avatar_service.training import motion_student as ms

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def fit_fold(dataset: str, out: pathlib.Path, fold: int, folds: int = 4) -> None:
    load_all = motion_clips.load_clips
    cfg = tm.MotionTrainConfig()
    _, clips = load_all(dataset)
    people = sorted({c.identity for c in clips if c.split == "train"})
    held = set(people[fold::folds])
    # the basis (and its closed-mouth map) is fitted without the fold's people too
    fold_basis = MotionBasis.fit([c.mesh for c in clips if c.split == "train" and c.identity not in held],
                                 cfg.components)

    def load(dataset, basis=None, **kw):  # the fold's people leave the train split (both fits read it from here)
        basis, loaded = load_all(dataset, basis=fold_basis if basis is None else basis, **kw)
        for c in loaded:
            if c.split == "train" and c.identity in held:
                c.split = "holdout"
        return basis, loaded

    motion_clips.load_clips = tm.load_clips = load
    try:
        basis, clips = load(dataset, n_components=cfg.components)
        tm.add_windows(dataset, clips, cfg.predictor, None, cfg.speeds)
        teacher, _ = tm.fit_predictor(clips, basis, cfg)
        tm.fit_visemes(teacher, cfg, None)
        folder = out / f"fold{fold}"
        basis.save_pretrained(folder / "teacher")
        teacher.save_pretrained(folder / "teacher")
        ms.fit(dataset, str(folder / "teacher"), str(folder / "student"),
               dataclasses.replace(ms.StudentTrainConfig(), test_lines=0), speech=[ms.default_speech()])
        student = ms.MotionStudent.from_pretrained(folder / "student")
        preds = {}
        for c in (c for c in clips if c.split == "holdout"):
            n = len(c.mesh)
            preds[f"{c.id}|teacher"] = teacher.predict(c.windows) * teacher.gate(c.audio, 0, n, 25.0)[:, None]
            preds[f"{c.id}|student"] = student.predict(student.clip_windows(c.audio, n, 25.0)) * \
                student.gate(c.audio, 0, n, 25.0)[:, None]
        np.savez(folder / "holdout.npz", **preds)
        print(f"fold {fold}: {len(preds) // 2} held-out clips", flush=True)
    finally:
        motion_clips.load_clips = tm.load_clips = load_all


def score(dataset: str, out: pathlib.Path, offsets: dict) -> dict:
    r, lip, still = {w: [] for w in WEIGHTS}, {w: [] for w in WEIGHTS}, []
    for path in sorted(out.glob("fold*/holdout.npz")):
        z = np.load(path)
        basis, clips = motion_clips.load_clips(dataset, basis=MotionBasis.from_pretrained(path.parent / "teacher"))
        by_id = {c.id: c for c in clips}
        for cid in sorted({k.split("|")[0] for k in z.files}):
            c, d = by_id[cid], offsets[cid]["offset_frames"]
            real, opening = shift(c.mesh, d), shift(c.opening[:, None], d)[:, 0]
            ok = np.isfinite(real).all(axis=(1, 2)) & np.isfinite(opening)
            ref = int(np.flatnonzero(np.isfinite(c.opening))[0])
            still.append(tm.lip_distance(basis, np.repeat(c.mesh[ref][None], ok.sum(), 0), real[ok]))
            for w in WEIGHTS:
                moved = tm.predicted_meshes(basis, c, (1 - w) * z[f"{cid}|teacher"] + w * z[f"{cid}|student"], ref)
                r[w].append(np.corrcoef([mouth_opening(m) for m in moved[ok]], opening[ok])[0, 1])
                lip[w].append(tm.lip_distance(basis, moved[ok], real[ok]))
    return {w: {"opening_r": float(np.nanmean(r[w])), "lip_vs_still": float(np.mean(lip[w]) / np.mean(still)),
                "clips": len(r[w])} for w in WEIGHTS}


CLOSED_MAPS = (("linear", 0.0), ("linear", 0.1), ("quadratic", 0.0), ("quadratic", 0.1), ("quadratic", 0.3),
               ("quadratic", 1.0))


def closed_maps(dataset: str, out: pathlib.Path, offsets: dict, blend: float) -> dict:
    """Lip distance of the served blend with each closed-mouth map of CLOSED_MAPS (`MotionBasis.fit`'s
    `closed_map`: features, ridge strength), each refitted per fold without the fold's people."""
    lip, still = {v: [] for v in CLOSED_MAPS}, []
    for path in sorted(out.glob("fold*/holdout.npz")):
        z = np.load(path)
        basis, clips = motion_clips.load_clips(dataset, basis=MotionBasis.from_pretrained(path.parent / "teacher"))
        held = {k.split("|")[0] for k in z.files}
        people = {c.identity for c in clips if c.id in held}
        fit_on = [(c.coeffs[ok], c.opening[ok]) for c in clips if c.split == "train" and c.identity not in people
                  for ok in [np.isfinite(c.opening)]]
        bases = {(kind, k): dataclasses.replace(basis, closed_map=fit_closed_map(
                     *zip(*fit_on), strength=k, quadratic=kind == "quadratic")) for kind, k in CLOSED_MAPS}
        for c in (c for c in clips if c.id in held):
            real = shift(c.mesh, offsets[c.id]["offset_frames"])
            ok = np.isfinite(real).all(axis=(1, 2))
            ref = int(np.flatnonzero(np.isfinite(c.opening))[0])
            still.append(tm.lip_distance(basis, np.repeat(c.mesh[ref][None], ok.sum(), 0), real[ok]))
            motion = (1 - blend) * z[f"{c.id}|teacher"] + blend * z[f"{c.id}|student"]
            for v, b in bases.items():
                lip[v].append(tm.lip_distance(b, tm.predicted_meshes(b, c, motion, ref)[ok], real[ok]))
    return {v: float(np.mean(lip[v]) / np.mean(still)) for v in CLOSED_MAPS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("--out", default="student_blend_cv")
    p.add_argument("--folds", default="0,1,2,3", help="folds to fit here (of 4)")
    p.add_argument("--score", action="store_true", help="only score the folds already fitted")
    p.add_argument("--closed-maps", action="store_true",
                   help="also score the closed-mouth maps of CLOSED_MAPS at the served blend (4 min)")
    p.add_argument("--offsets", default="avatar_service/assets/motion/motion_scores.json",
                   help="the teacher's scores file: its data.sync offsets realign the training clips")
    a = p.parse_args()
    out = pathlib.Path(a.out)
    if not a.score:
        for f in (int(x) for x in a.folds.split(",")):
            fit_fold(a.dataset, out, f)
    offsets = json.loads(pathlib.Path(a.offsets).read_text())["data"]["sync"]
    result = score(a.dataset, out, offsets)
    for w, s in result.items():
        print(f"blend {w:.1f}: opening r {s['opening_r']:.4f}, lip distance {100 * (s['lip_vs_still'] - 1):+.1f}% "
              f"vs still ({s['clips']} clips)")
    best = max(result, key=lambda w: result[w]["opening_r"])
    print(f"best: {best}")
    if a.closed_maps:
        served = ms.StudentTrainConfig().student.blend
        for (kind, k), v in closed_maps(a.dataset, out, offsets, served).items():
            print(f"closed map {kind}, ridge {k:g}: lip distance {100 * (v - 1):+.1f}% vs still (blend {served})")


if __name__ == "__main__":
    main()
