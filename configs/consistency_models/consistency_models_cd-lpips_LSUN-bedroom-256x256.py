# CD (LPIPS) on LSUN Bedroom-256, two-step ts 0,17,39 on 40 steps: the paper's
# FID 5.22. Trains as CD (l2) with the LPIPS metric.
_base_ = ['./consistency_models_cd-l2_LSUN-bedroom-256x256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_bedroom256_lpips.pt',
    ts=(0, 17, 39),
    train_cfg=dict(loss='lpips'))
