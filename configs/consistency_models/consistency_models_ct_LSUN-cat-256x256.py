# CT on LSUN Cat-256, two-step ts 0,62,150 on 151 steps: the paper's FID 11.7.
# Trains as the Bedroom model, initialised from the Cat teacher, on cat images.
URL = 'https://openaipublic.blob.core.windows.net/consistency/'
_base_ = ['./consistency_models_ct_LSUN-bedroom-256x256.py']

model = dict(
    model_path=URL + 'ct_cat256.pt',
    ts=(0, 62, 150),
    train_cfg=dict(init_from=URL + 'edm_cat256_ema.pt'))
test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
train_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
