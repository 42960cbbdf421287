# One-step sampling, CD (LPIPS) on LSUN Bedroom-256: the paper's FID 7.80.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_bedroom256_lpips.pt',
    sampler='onestep')
