# Two-step sampling, CD (LPIPS) on ImageNet-64 (ts 0,22,39 on a 40-point grid,
# as the original scripts/launch.sh): the paper's two-step FID 4.70.
# The CD (LPIPS) config as it is, under the name MMagic's model zoo gives it.
_base_ = ['./consistency_models_cd-lpips_imagenet1k-64x64.py']
