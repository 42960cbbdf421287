# Two-step sampling, CD (LPIPS) on LSUN Cat-256. The original repository
# publishes no ts for Cat CD; this uses the Bedroom CD (LPIPS) setting
# 0,17,39 on 40 steps (same architecture, schedule and training recipe).
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_cat256_lpips.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 17, 39))

test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
