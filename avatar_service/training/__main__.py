"""`python -m avatar_service.training train ...`: the training commands alone, for torchrun
(`torchrun --nproc_per_node N -m avatar_service.training train denoiser ...`)."""
import sys

from avatar_service.training.cli import main

sys.exit(main())
