# CD (LPIPS) on LSUN Bedroom-256, two-step ts 0,17,39 on 40 steps: the paper's FID 5.22.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_bedroom256_lpips.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 17, 39))
