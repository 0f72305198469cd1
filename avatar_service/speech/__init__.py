"""Text to speech for the Speak RPC: pluggable offline TTS backends (piper neural voice by default,
espeak-ng as a light fallback) feeding the same frame generator Animate uses.

Nothing heavy is imported here: the backends are an optional extra (`pip install avatarlab[speech]`)
and load lazily when the server builds its SpeechService."""
