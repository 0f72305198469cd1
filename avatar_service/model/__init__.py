"""The DiffTalk-style generator: config, audio features, networks, and the saved-model container."""
from avatar_service.model.config import GeneratorConfig
from avatar_service.model.generator import FaceGenerator

__all__ = ["FaceGenerator", "GeneratorConfig"]
