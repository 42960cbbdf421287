"""Checkpoint conversion: the ADM UNet's weights to and from diffusers, and whole files.

- :mod:`.diffusers_unet`: the mapping itself: parameter names, ``qkv`` split,
  ``UNet2DModel`` and scheduler configs, reading and writing diffusers folders;
- :mod:`.checkpoint_files`: what ``tools/convert_checkpoint.py`` and
  ``tools/export_weights.py`` run: a file converted, checked against our
  UNet's outputs and written atomically.
"""
