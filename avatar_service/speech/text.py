"""Boundary checks and clean-up of a line of text before any backend sees it."""
from __future__ import annotations

import re
import unicodedata

from avatar_service.errors import InvalidArgument, ResourceExhausted

_SENTENCE_END = re.compile(r"(?<=[.!?;:…])\s+|\n\s*\n?")
_CLAUSE_END = re.compile(r"(?<=[,;:–—])\s+")


def prepare_text(text: str, max_chars: int) -> str:
    """Validate a SpeakRequest.text and return it normalised (NFC, no control characters).

    Empty -> INVALID_ARGUMENT; longer than `max_chars` code points -> RESOURCE_EXHAUSTED; nothing a
    voice can say (no letter or digit) -> INVALID_ARGUMENT."""
    if not text or not text.strip():
        raise InvalidArgument("text is required: set SpeakRequest.text to the line to say")
    if len(text) > max_chars:
        raise ResourceExhausted(f"text is {len(text)} characters, over the server's limit of {max_chars} "
                                "(ServerInfo.limits.max_text_chars); split the line into several Speak calls")
    text = unicodedata.normalize("NFC", text)
    # control and format characters (NUL, escapes, bidi marks) would reach C code or act as markup
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") and c != "\n" else c for c in text)
    # piper reads [[ ... ]] as raw phonemes; a line from a game is always plain text
    text = text.replace("[[", "[ [").replace("]]", "] ]")
    if not any(c.isalnum() for c in text):
        raise InvalidArgument("text has no speakable characters (it needs at least one letter or digit)")
    return " ".join(text.split(" ")).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences (and blank-line separated paragraphs) for backends that do not split by themselves."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and any(c.isalnum() for c in s)]


def bounded_units(text: str, max_words: int) -> list[str]:
    """The text in pieces a backend synthesizes one at a time, none longer than `max_words` words.

    A backend synthesizes a sentence in one go, so one very long sentence would hold back the first
    audio. Ordinary sentences stay together in one piece (the backend splits and phrases them itself);
    only an over-long sentence is cut, at clause punctuation where it has some, else between words."""
    units, run = [], []
    for sentence in split_sentences(text):
        if len(sentence.split()) <= max_words:
            run.append(sentence)
            continue
        if run:
            units.append(" ".join(run))
            run = []
        piece: list[str] = []
        for clause in _CLAUSE_END.split(sentence):
            words = clause.split()
            while words:
                room = max_words - len(piece)
                if len(words) > room and piece:  # close the piece at a clause boundary
                    units.append(" ".join(piece))
                    piece = []
                    continue
                piece.extend(words[:max_words])
                words = words[max_words:]
        if piece:
            units.append(" ".join(piece))
    if run:
        units.append(" ".join(run))
    return [u for u in units if any(c.isalnum() for c in u)]
