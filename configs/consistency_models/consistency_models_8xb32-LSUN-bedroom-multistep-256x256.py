# Two-step sampling, CD (LPIPS) on LSUN Bedroom-256 (ts 0,17,39 on 40 steps,
# found by the original ternary search): the paper's two-step FID 5.22.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_bedroom256_lpips.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 17, 39))
