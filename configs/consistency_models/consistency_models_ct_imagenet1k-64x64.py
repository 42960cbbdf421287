# CT on ImageNet-64, two-step ts 0,106,200 on 201 steps: the paper's FID 11.1.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'ct_imagenet64.pt',
    training_mode='consistency_training',
    sampler='multistep',
    steps=201,
    ts=(0, 106, 200))
