# CD (LPIPS) on LSUN Cat-256, two-step on 40 steps. The original publishes no
# Cat ts; this is the Bedroom CD (LPIPS) setting 0,17,39 (same architecture and
# recipe).
URL = 'https://openaipublic.blob.core.windows.net/consistency/'
_base_ = ['./consistency_models_cd-l2_LSUN-cat-256x256.py']

model = dict(
    model_path=URL + 'cd_cat256_lpips.pt',
    ts=(0, 17, 39),
    train_cfg=dict(loss='lpips'))
