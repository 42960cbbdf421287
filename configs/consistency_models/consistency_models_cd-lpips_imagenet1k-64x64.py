# CD (LPIPS) on ImageNet-64, two-step ts 0,22,39 on 40 steps: the paper's FID 4.70.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_imagenet64_lpips.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 22, 39))
