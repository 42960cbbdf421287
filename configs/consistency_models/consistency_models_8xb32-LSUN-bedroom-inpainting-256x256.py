# Zero-shot inpainting with CD (LSUN Bedroom-256), as in the paper's editing
# figures (MMagicInferencer/demo: img + mask, white = fill as MMagic's masks).
_base_ = ['./consistency_models_8xb32-LSUN-bedroom-onestep-256x256.py']

editing = dict(task='inpaint', ts=(0, 10, 20, 30, 39), invert_mask=True)
