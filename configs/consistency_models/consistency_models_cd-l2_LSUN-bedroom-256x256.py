# CD (l2) on LSUN Bedroom-256, two-step ts 0,18,39 on 40 steps.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_bedroom256_l2.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 18, 39))
