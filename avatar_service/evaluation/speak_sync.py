"""Speak's lip sync, measured independently of the voice's own timings (issue #20: "viseme onsets match a
forced alignment of the synthesized audio within 40 ms median").

Each line goes through the served path in process: SpeechService.speak over a motion-only Session with
the server's TextMouth, exactly as a Speak RPC runs it, so sentence offsets, pauses, resampling and the
frame clock are all the server's own. What comes back is what a client gets: the audio (asked for at
16 kHz) and one mouth block per frame. The audio is then forced-aligned with pocketsphinx against the
line's words (CMUdict pronunciations, not the voice's phonemes), its phones go through the same viseme
table (speech/visemes.py), and the two viseme sequences are matched by edit distance on their labels.
Only matched onsets count; the report says how many matched.

Two onsets are scored for every line:
  served    the dominant viseme of each served frame; an onset is the pts of the first frame it leads
            (what a player sees, and what the bar is measured on)
  segments  the viseme segments TextMouth was given, on the session clock, before coarticulation and
            framing (tells framing and coarticulation apart from the voice's own timing)
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import sys

import numpy as np

from avatar_service.evaluation.phone_baseline import FRAME_S, arpabet_to_ipa
from avatar_service.speech.visemes import VISEMES, viseme_segments

RATE_HZ = 16000  # asked of the Speak path, and what pocketsphinx's acoustic model reads
# Edit costs: a substitution a little dearer than a deletion, so among alignments with the fewest edits
# the one matching the most labels wins; then the nearer onsets (per second; never outweighs an edit).
SUBSTITUTE, TIME_TIE_BREAK = 1.01, 1e-4


@dataclasses.dataclass
class ServedLine:
    audio: np.ndarray  # float32 at RATE_HZ, as the client gets it
    frame_pts_s: np.ndarray  # (F,)
    frame_visemes: np.ndarray  # (F, 15)
    segments: list[tuple[str, float, float]]  # TextMouth's viseme segments, session clock


def runs_of_frames(pts_s: np.ndarray, visemes: np.ndarray) -> list[tuple[str, float]]:
    """[(viseme, onset_s)]: the dominant viseme of each frame, one entry where it changes."""
    top = visemes.argmax(1)
    return [(VISEMES[int(top[i])], float(pts_s[i])) for i in range(len(top)) if i == 0 or top[i] != top[i - 1]]


def runs_of_segments(segments: list[tuple[str, float, float]]) -> list[tuple[str, float]]:
    """[(viseme, onset_s)] of time-ordered segments, `sil` before, after and in the gaps between them."""
    out: list[tuple[str, float]] = [("sil", 0.0)]
    end = 0.0
    for v, s, e in segments:
        for label, onset in ((("sil", end),) if s > end + 1e-6 else ()) + ((v, s),):
            if label == out[-1][0]:
                continue
            if onset <= out[-1][1] + 1e-9:  # the previous run has no length: this one replaces it
                out.pop()
                if out and out[-1][0] == label:
                    continue
            out.append((label, onset))
        end = e
    if out[-1][0] != "sil":
        out.append(("sil", end))
    return out


def match_onsets(ref: list[tuple[str, float]], hyp: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    """Edit-distance (Levenshtein) alignment of two viseme sequences, as phone error rates are scored;
    [(viseme, ref_onset, hyp_onset)] of the pairs it matches with equal labels, leaving out
    runs that open the reference line (at 0: the line's start, not an onset)."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = ref[i - 1][0] == hyp[j - 1][0]
            diag = cost[i - 1, j - 1] + (TIME_TIE_BREAK * abs(ref[i - 1][1] - hyp[j - 1][1]) if same else SUBSTITUTE)
            cost[i, j] = min(diag, cost[i - 1, j] + 1.0, cost[i, j - 1] + 1.0)
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        same = ref[i - 1][0] == hyp[j - 1][0]
        diag = cost[i - 1, j - 1] + (TIME_TIE_BREAK * abs(ref[i - 1][1] - hyp[j - 1][1]) if same else SUBSTITUTE)
        if cost[i, j] == diag:  # the same sums as above, so exact
            if same:
                pairs.append((ref[i - 1][0], ref[i - 1][1], hyp[j - 1][1]))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1.0:
            i -= 1
        else:
            j -= 1
    return [p for p in reversed(pairs) if p[1] > 1e-6]


# -- the independent reference: pocketsphinx forced alignment ------------------------------------------

def _align_decoder():
    from pocketsphinx import Decoder

    # beams far wider than recognition's defaults: the path is known, and with the default ones a formant
    # voice in a British or Caribbean accent often loses it before the line ends (alignment fails)
    return Decoder(samprate=RATE_HZ, bestpath=False, loglevel="FATAL", beam=1e-120, wbeam=1e-100, pbeam=1e-120,
                   lpbeam=1e-80, lponlybeam=1e-80)


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def forced_alignment(audio16k: np.ndarray, text: str, decoder=None) -> list[tuple[str, float, float]]:
    """[(ipa, start_s, end_s)] of the phones of `text`'s words (CMUdict pronunciations; pocketsphinx puts
    optional silences between words) where the audio has them. ValueError when a word has no
    pronunciation or the alignment fails."""
    d = decoder or _align_decoder()
    words = words_of(text)
    missing = [w for w in words if d.lookup_word(w) is None]
    if missing:
        raise ValueError(f"no CMUdict pronunciation for {missing}")
    pcm = (np.clip(audio16k, -1, 1) * 32767).astype("<i2").tobytes()
    d.set_align_text(" ".join(words))
    try:
        for second_pass in (False, True):  # words first, then phones within them (pocketsphinx's own recipe)
            if second_pass:
                d.set_alignment()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
        alignment = d.get_alignment()
    except RuntimeError as e:  # the word pass found no path through the audio
        raise ValueError(f"pocketsphinx could not align the line: {e}") from None
    if alignment is None:
        raise ValueError("pocketsphinx found no alignment")
    return [(arpabet_to_ipa(p.name), p.start * FRAME_S, (p.start + p.duration) * FRAME_S)
            for w in alignment for p in w]


# -- the served side: one Speak line in process --------------------------------------------------------

async def _speak(service, voice, text: str, mouth, fps: int) -> ServedLine:
    from avatar_service.runtime.audio_stream import AudioStream, SampleFormat
    from avatar_service.runtime.frame_encoder import VideoSpec
    from avatar_service.runtime.session import GenSpec, Session
    from avatar_service.speech.service import SpeakLine
    from avatar_service.speech.session import SpeechAudio

    audio = AudioStream(SampleFormat.F32LE, voice.sample_rate_hz, 1, RATE_HZ, max_seconds=600.0)
    session = Session(None, None, audio, VideoSpec(fps=fps), GenSpec(0, 1, 1.0), mouth,
                      first_batch=service.config.first_batch, motion_only=True)
    pcm, pts, vis = [], [], []
    async for ev in service.speak(SpeakLine(text, voice, RATE_HZ), session):
        if isinstance(ev, SpeechAudio):
            # chunks are contiguous (pts is in whole ms)
            if abs(sum(len(p) for p in pcm) - ev.pts_ms * RATE_HZ / 1000) > RATE_HZ / 1000:
                raise RuntimeError(f"audio chunk at {ev.pts_ms} ms does not follow the previous one")
            pcm.append(np.frombuffer(ev.pcm_s16le, "<i2"))
        elif isinstance(ev, list):  # a run of frames
            pts.extend(f.pts_ms / 1000 for f in ev)
            vis.extend(f.mouth.visemes for f in ev)
    samples = np.concatenate(pcm).astype(np.float32) / 32767 if pcm else np.zeros(0, np.float32)
    return ServedLine(samples, np.asarray(pts), np.asarray(vis), mouth.segments())


def served_line(service, voice, text: str, audio_mouth, fps: int = 25) -> ServedLine:
    """One line through SpeechService.speak on a motion-only session with a fresh TextMouth."""
    from avatar_service.speech.text_mouth import TextMouth

    return asyncio.run(_speak(service, voice, text, TextMouth(audio_mouth), fps))


def server_mouth():
    """The server's AudioMouth (runtime/mouth.py; TextMouth takes its rig and readiness rule)."""
    from avatar_service.runtime.mouth import AudioMouth
    from avatar_service.runtime.warp_renderer import MotionModel

    motion = MotionModel.default()
    return AudioMouth(motion, motion.features(RATE_HZ))


def speak_service(voices):
    """A SpeechService with exactly these VoiceConfigs loaded."""
    from avatar_service.speech.config import SpeechConfig
    from avatar_service.speech.service import SpeechService, load_voice

    return SpeechService(SpeechConfig(voices=tuple(voices)), {v.voice_id: load_voice(v) for v in voices})


# -- the measurement -------------------------------------------------------------------------------

def eval_voices(piper_rates: tuple[float, ...] = (0.8, 1.0, 1.25), n_espeak: int = 6, seed: int = 0):
    """The voices measured: the piper voice at several rates, espeak-ng accents and variants at random rates."""
    from avatar_service.speech.config import DEFAULT_VOICES, VoiceConfig
    from avatar_service.speech.espeak import DEFAULT_WPM
    from avatar_service.training.synthetic_speech import ESPEAK_VARIANTS, ESPEAK_VOICES

    rng = np.random.default_rng(seed)
    piper = next(v for v in DEFAULT_VOICES if v.backend == "piper")
    out = [piper.model_copy(update={"voice_id": f"piper/joe x{r:g}", "speaking_rate": r}) for r in piper_rates]
    for k in range(n_espeak):
        name = ESPEAK_VOICES[k % len(ESPEAK_VOICES)] + str(rng.choice(ESPEAK_VARIANTS))
        wpm = int(rng.integers(120, 230))
        out.append(VoiceConfig(voice_id=f"espeak-ng/{name} {wpm}wpm", backend="espeak-ng", espeak_voice=name,
                               speaking_rate=wpm / DEFAULT_WPM))
    return out


def eval_texts(n: int, seed: int = 0) -> list[str]:
    """Random lines (training/synthetic_speech.py's word list), one or two sentences each, so the pause
    Speak puts between sentences is on the clock too."""
    from avatar_service.training.synthetic_speech import random_line

    rng = np.random.default_rng(seed + 1)
    return [" ".join(random_line(rng, 3, 10) for _ in range(int(rng.integers(1, 3)))) for _ in range(n)]


def summarise(diffs_ms: list[float], matched: int, reference: int) -> dict:
    d = np.abs(np.asarray(diffs_ms, np.float64))
    signed = np.asarray(diffs_ms, np.float64)
    return {"matched_onsets": matched, "reference_onsets": reference,
            "median_abs_ms": round(float(np.median(d)), 1) if len(d) else None,
            "p90_abs_ms": round(float(np.percentile(d, 90)), 1) if len(d) else None,
            "median_signed_ms": round(float(np.median(signed)), 1) if len(d) else None,
            "within_40ms": round(float((d <= 40).mean()), 3) if len(d) else None}


def measure_line(served: ServedLine, text: str, decoder=None) -> dict:
    """Onset differences (served - aligned, ms) of one line, for both served onsets."""
    ref = runs_of_segments(viseme_segments(forced_alignment(served.audio, text, decoder)))
    out = {"reference_onsets": sum(onset > 1e-6 for _, onset in ref)}
    for kind, hyp in (("served", runs_of_frames(served.frame_pts_s, served.frame_visemes)),
                      ("segments", runs_of_segments(served.segments))):
        pairs = match_onsets(ref, hyp)
        out[kind] = [round((h - r) * 1000, 1) for _, r, h in pairs]
    return out


def measure(n_lines: int = 48, fps: int = 25, seed: int = 0, log=lambda s: None) -> dict:
    voices = eval_voices(seed=seed)
    configs = {v.voice_id: v for v in voices}
    service, audio_mouth = speak_service(voices), server_mouth()
    decoder = _align_decoder()
    rows, failures = [], []
    try:
        for k, text in enumerate(eval_texts(n_lines, seed)):
            # alternate the backends, and cycle through each one's voices
            group = [v for v in voices if v.backend == ("piper", "espeak-ng")[k % 2]]
            voice = service.voice(group[(k // 2) % len(group)].voice_id)
            served = served_line(service, voice, text, audio_mouth, fps)
            try:
                row = measure_line(served, text, decoder)
            except ValueError as e:
                failures.append({"text": text, "voice": voice.config.voice_id, "error": str(e)})
                continue
            row.update(text=text, voice=voice.config.voice_id, backend=configs[voice.config.voice_id].backend)
            rows.append(row)
            log(f"{row['voice']:32s} served {np.median(np.abs(row['served'])) if row['served'] else float('nan'):5.1f} ms"
                f" over {len(row['served'])}/{row['reference_onsets']} onsets: {text}")
    finally:
        service.close()
    result = {"fps": fps, "lines": len(rows), "failed_alignments": failures,
              "reference": "pocketsphinx forced alignment of the served audio against the line's words (CMUdict)",
              "onset_difference": "served minus aligned, ms; |.| statistics over label-matched onsets only"}
    for kind in ("served", "segments"):
        groups = {"overall": rows, **{b: [r for r in rows if r["backend"] == b] for b in ("piper", "espeak-ng")}}
        result[kind] = {g: summarise([d for r in rs for d in r[kind]], sum(len(r[kind]) for r in rs),
                                     sum(r["reference_onsets"] for r in rs)) for g, rs in groups.items()}
    result["per_line"] = [{k: r[k] for k in ("voice", "text", "reference_onsets")}
                          | {"served": summarise(r["served"], len(r["served"]), r["reference_onsets"])}
                          for r in rows]
    return result


def register(sub) -> None:
    p = sub.add_parser("eval-speak", help="Speak's viseme onsets, as served, against a pocketsphinx forced "
                       "alignment of the synthesized audio (issue #20)")
    p.add_argument("--lines", type=int, default=48, help="random lines, spread over the voices")
    p.add_argument("--fps", type=int, default=25, help="the Speak session's frame rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the result here")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import pathlib

    result = measure(args.lines, args.fps, args.seed, log=lambda s: print(s, file=sys.stderr, flush=True))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    print(json.dumps({k: result[k] for k in ("fps", "lines", "served", "segments")}, indent=2))
    return 0
