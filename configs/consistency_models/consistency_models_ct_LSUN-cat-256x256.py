# CT on LSUN Cat-256, two-step ts 0,62,150 on 151 steps: the paper's FID 11.7.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'ct_cat256.pt',
    training_mode='consistency_training',
    sampler='multistep',
    steps=151,
    ts=(0, 62, 150))

test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
