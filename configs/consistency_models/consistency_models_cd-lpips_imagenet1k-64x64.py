# CD (LPIPS) on ImageNet-64, two-step ts 0,22,39 on 40 steps: the paper's FID 4.70.
# Trains as CD (l2) with the LPIPS metric.
_base_ = ['./consistency_models_cd-l2_imagenet1k-64x64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_imagenet64_lpips.pt',
    train_cfg=dict(loss='lpips'))
