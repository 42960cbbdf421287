# Zero-shot inpainting with the shipped digits CD model (MMagicInferencer /
# demo: img + mask, white = fill as MMagic's inpainting masks; tools/edit.py
# takes the mask's convention from its flags instead).
_base_ = ['./consistency_models_cd_digits-onestep-16x16.py']

editing = dict(task='inpaint', ts=(0, 10, 20, 30, 39), invert_mask=True)
