# One-step sampling, CD (LPIPS) on LSUN Cat-256: the paper's FID 11.0.
# The CD (LPIPS) config with the one-step sampler (it trains as that config).
_base_ = ['./consistency_models_cd-lpips_LSUN-cat-256x256.py']

model = dict(sampler='onestep', ts=None)
