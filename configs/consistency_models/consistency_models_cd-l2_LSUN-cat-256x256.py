# CD (l2) on LSUN Cat-256, two-step on 40 steps. The original publishes no Cat ts;
# this is the Bedroom CD (l2) setting 0,18,39 (same architecture and recipe).
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_cat256_l2.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 18, 39))

test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
