# One-step sampling, CD (LPIPS) on LSUN Cat-256: the paper's FID 11.0.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_cat256_lpips.pt',
    sampler='onestep')

test_dataloader = dict(dataset=dict(data_root='data/lsun/cat_256'))
