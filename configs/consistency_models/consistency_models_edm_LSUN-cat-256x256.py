# EDM teacher on LSUN Cat-256: Heun, 40 steps, s_churn 0 (79 NFE): the paper's FID 6.69.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'edm_cat256_ema.pt',
    training_mode='edm',
    sampler='heun',
    steps=40,
    s_churn=0.0)

test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
