"""AvatarLab: talking NPC faces from speech, served over gRPC."""
__version__ = "0.1.0"
