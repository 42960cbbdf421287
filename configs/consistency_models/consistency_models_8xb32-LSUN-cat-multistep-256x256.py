# Two-step sampling, CD (LPIPS) on LSUN Cat-256. The original repository
# publishes no ts for Cat CD; this uses the Bedroom CD (LPIPS) setting
# 0,17,39 on 40 steps (same architecture, schedule and training recipe).
# The CD (LPIPS) config as it is, under the name MMagic's model zoo gives it.
_base_ = ['./consistency_models_cd-lpips_LSUN-cat-256x256.py']
