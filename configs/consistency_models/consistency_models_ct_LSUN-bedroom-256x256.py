# CT on LSUN Bedroom-256, two-step ts 0,67,150 on 151 steps: the paper's FID 7.85.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'ct_bedroom256.pt',
    training_mode='consistency_training',
    sampler='multistep',
    steps=151,
    ts=(0, 67, 150))
