"""Files in and out: checkpoint formats and downloads, atomic writes, uint8 images, the model zoo.

- :mod:`.checkpoint`: released raw ``.pt`` files, training checkpoints, URLs,
  EMA keys, the shipped weights' SHA-256 sums (a leaf: imports only
  :mod:`.atomic`);
- :mod:`.atomic`: the one atomic-write helper (standard library only);
- :mod:`.images`: the one uint8 rule (float [-1, 1] NCHW <-> uint8 NHWC) and grids;
- :mod:`.provenance`: which config, iteration and commit made a weights file;
- :mod:`.zoo`: where ``configs/`` and the metafiles are; which configs fit a checkpoint.
"""
