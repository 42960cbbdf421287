# One-step sampling, CD (LPIPS) on ImageNet-64: the paper's one-step FID 6.20.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_imagenet64_lpips.pt',
    sampler='onestep')
