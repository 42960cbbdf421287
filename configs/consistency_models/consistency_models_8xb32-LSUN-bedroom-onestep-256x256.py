# One-step sampling, CD (LPIPS) on LSUN Bedroom-256: the paper's FID 7.80.
# The CD (LPIPS) config with the one-step sampler (it trains as that config).
_base_ = ['./consistency_models_cd-lpips_LSUN-bedroom-256x256.py']

model = dict(sampler='onestep', ts=None)
