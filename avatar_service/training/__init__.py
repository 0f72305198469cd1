"""Training for the generator's stages (autoencoder, then denoiser) and the lip-sync expert.

Each stage is one module with a `Stage` subclass; `loop.train` runs any stage the same way on CPU
or CUDA, one process or many (torchrun + DDP), with resumable checkpoints, logs and samples.
"""
