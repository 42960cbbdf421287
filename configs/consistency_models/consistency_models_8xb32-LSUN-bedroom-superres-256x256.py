# Zero-shot super-resolution with CD (LSUN Bedroom-256), as in the paper's
# editing figures: 8x8 patch means kept, i.e. 32x32 -> 256x256 (the original's
# iterative_superres) (MMagicInferencer/demo: img, 32x32 or 256x256).
_base_ = ['./consistency_models_8xb32-LSUN-bedroom-onestep-256x256.py']

editing = dict(task='superres', ts=(0, 10, 20, 30, 39), patch_size=8)
