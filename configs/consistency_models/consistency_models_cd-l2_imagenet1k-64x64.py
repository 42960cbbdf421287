# CD (l2) on ImageNet-64, two-step ts 0,22,39 on 40 steps (the original scripts/launch.sh).
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_imagenet64_l2.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 22, 39))
