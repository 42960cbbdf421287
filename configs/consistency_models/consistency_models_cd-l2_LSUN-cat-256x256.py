# CD (l2) on LSUN Cat-256, two-step on 40 steps. The original publishes no Cat
# ts; this is the Bedroom CD (l2) setting 0,18,39 (same architecture and
# recipe). Trains as the Bedroom model, from the Cat teacher, on cat images.
URL = 'https://openaipublic.blob.core.windows.net/consistency/'
_base_ = ['./consistency_models_cd-l2_LSUN-bedroom-256x256.py']

model = dict(
    model_path=URL + 'cd_cat256_l2.pt',
    train_cfg=dict(teacher=dict(path=URL + 'edm_cat256_ema.pt')))
test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
train_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
