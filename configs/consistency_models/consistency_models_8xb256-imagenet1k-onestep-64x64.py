# One-step sampling, CD (LPIPS) on ImageNet-64: the paper's one-step FID 6.20.
# The CD (LPIPS) config with the one-step sampler (it trains as that config).
_base_ = ['./consistency_models_cd-lpips_imagenet1k-64x64.py']

model = dict(sampler='onestep', ts=None)
