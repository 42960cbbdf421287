# EDM teacher on ImageNet-64: Heun, 40 steps, s_churn 0 (79 NFE): the paper's FID 2.44.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'edm_imagenet64_ema.pt',
    training_mode='edm',
    sampler='heun',
    steps=40,
    s_churn=0.0)
