# EDM teacher on LSUN Cat-256: Heun, 40 steps, s_churn 0 (79 NFE): the paper's
# FID 6.69. As the Bedroom teacher, on cat images.
URL = 'https://openaipublic.blob.core.windows.net/consistency/'
_base_ = ['./consistency_models_edm_LSUN-bedroom-256x256.py']

model = dict(model_path=URL + 'edm_cat256_ema.pt')
test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
train_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
