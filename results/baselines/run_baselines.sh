#!/usr/bin/env bash
# Regenerates every file in results/baselines/ (run from the repository root). Each sweep resumes
# where it stopped, and bitstreams, decoded-image metrics and task outputs are cached in the
# project's cache root ($PREPICM_CACHE_DIR, else ~/.cache/prepicm), so re-running is cheap.
# For a cold run: PREPICM_CACHE_DIR=$(mktemp -d) results/baselines/run_baselines.sh
set -euo pipefail
P=.venv/bin/prepicm
B=results/baselines
IMNET=../shared/data/imagenet/val
COCO=../shared/data/coco

# 1. EfficientNet-Lite0 top-1 vs bpp, 1000 ImageNet val images (BPG also via benchmarks/eval_sweep.py)
$P eval --dataset-kind imagenet_folder --dataset $IMNET --task efficientnet_lite0 --codecs bpg \
  --qualities bpg=22,27,32,37,42,46 --codec-option bpg:level=8 --out $B/imagenet_efficientnet_lite0/bpg --no-progress
for spec in "jpeg=5,10,20,35,55,80" "webp=5,15,30,50,70,90" "avif=10,25,40,55,70,85" "vvc=22,27,32,37,42,47"; do
  c=${spec%%=*}
  $P eval --dataset-kind imagenet_folder --dataset $IMNET --task efficientnet_lite0 --codecs $c \
    --qualities $spec --out $B/imagenet_efficientnet_lite0/$c --no-progress
done

# 2. YOLOv5n COCO mAP vs bpp, 79 val2017 images
$P eval --dataset-kind coco --dataset $COCO --task yolov5n --codecs bpg --qualities bpg=22,27,32,37,42,46 \
  --codec-option bpg:level=8 --out $B/coco_yolov5n/bpg --no-progress
$P eval --dataset-kind coco --dataset $COCO --task yolov5n --codecs jpeg --qualities jpeg=5,10,20,35,55,80 \
  --out $B/coco_yolov5n/jpeg --no-progress
$P eval --dataset-kind coco --dataset $COCO --task yolov5n --codecs vvc --qualities vvc=22,27,32,37,42,47 \
  --out $B/coco_yolov5n/vvc --no-progress

# 3. Combined tables/plots and BD-rates against BPG (paired bootstrap, 1000 replicates, 90%)
$P plot $B/imagenet_efficientnet_lite0/{bpg,jpeg,webp,avif,vvc} --out $B/imagenet_efficientnet_lite0/report
$P bdrate $B/imagenet_efficientnet_lite0/{bpg,jpeg,webp,avif,vvc} --anchor bpg \
  --metrics top1 top5 ce kl agreement psnr msssim --bootstrap 1000 --seed 0 --ci 0.9 \
  --out $B/imagenet_efficientnet_lite0/bdrate_vs_bpg
$P plot $B/coco_yolov5n/{bpg,jpeg,vvc} --out $B/coco_yolov5n/report
$P bdrate $B/coco_yolov5n/{bpg,jpeg,vvc} --anchor bpg \
  --metrics map ap50 f1 det_distortion psnr msssim --bootstrap 1000 --seed 0 --ci 0.9 \
  --out $B/coco_yolov5n/bdrate_vs_bpg
