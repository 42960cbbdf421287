# Two-step sampling, CD (LPIPS) on LSUN Bedroom-256 (ts 0,17,39 on 40 steps,
# found by the original ternary search): the paper's two-step FID 5.22.
# The CD (LPIPS) config as it is, under the name MMagic's model zoo gives it.
_base_ = ['./consistency_models_cd-lpips_LSUN-bedroom-256x256.py']
