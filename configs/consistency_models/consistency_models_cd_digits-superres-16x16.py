# Zero-shot super-resolution with the shipped digits CD model: the means of
# 4x4 patches are kept (an input of 4x4 pixels, or 16x16 whose patch means are
# used), the model adds the detail (MMagicInferencer/demo: img).
_base_ = ['./consistency_models_cd_digits-onestep-16x16.py']

editing = dict(task='superres', ts=(0, 10, 20, 30, 39), patch_size=4)
