#!/usr/bin/env bash
# Regenerates results/npp/: an NPP in front of each codec, against the same codec alone, on the
# same images at the same qualities in one sweep (so every BD-rate is paired image by image).
# NPP=DIR names the exported artifact (default: `shipped`, the committed one under models/).
# Run from the repository root. Bitstreams and task outputs are cached ($PREPICM_CACHE_DIR), so a
# second task on the same images and codec re-uses the encodes. Sections run on their own:
#   results/npp/run_npp_eval.sh [imagenet|mobilenet|codecs|coco|kodak ...]   (default: all)
# NPP_RESULTS=DIR writes elsewhere; NPP_LIMIT=N takes the first N images of each set (a quick look).
set -euo pipefail
P=.venv/bin/prepicm
R=${NPP_RESULTS:-results/npp}   # where the sweeps go
LIMIT=(${NPP_LIMIT:+--limit "$NPP_LIMIT"})
NPP=${NPP:-shipped}
IMNET=../shared/data/imagenet/val
COCO=../shared/data/coco
KODAK=../shared/data/kodak
BPG_Q=bpg=26,30,34,38,42          # inside the q range the NPP was trained for (25..44)
BD=(--bootstrap 1000 --seed 0 --ci 0.9)
sections=("${@:-imagenet mobilenet codecs coco kodak}")
want() { [[ " ${sections[*]} " == *" $1 "* ]]; }

imagenet_task() {  # task, codec, qualities, [codec options]
  local task=$1 codec=$2 q=$3; shift 3
  $P eval --dataset-kind imagenet_folder --dataset $IMNET --task "$task" --codecs "$codec" --qualities "$q" "$@" \
    --preprocess none "$NPP" --out $R/imagenet_$task/$codec --no-progress "${LIMIT[@]}"
}
anchor() { case $1 in bpg) echo 'bpg[level=8]';; *) echo "$1";; esac; }

# 1. the headline: EfficientNet-Lite0 (the task the NPP was trained against), ImageNet val 1000, BPG
if want imagenet; then
  imagenet_task efficientnet_lite0 bpg $BPG_Q --codec-option bpg:level=8
  $P bdrate $R/imagenet_efficientnet_lite0/bpg --anchor "$(anchor bpg)" \
    --metrics top1 top5 kl ce agreement psnr msssim "${BD[@]}" --out $R/imagenet_efficientnet_lite0/bdrate_bpg
  $P plot $R/imagenet_efficientnet_lite0/bpg --out $R/imagenet_efficientnet_lite0/report_bpg
fi
# 2. another backbone, never trained against: MobileNetV2 (same bitstreams, from the cache)
if want mobilenet; then
  imagenet_task mobilenet_v2 bpg $BPG_Q --codec-option bpg:level=8
  $P bdrate $R/imagenet_mobilenet_v2/bpg --anchor "$(anchor bpg)" \
    --metrics top1 top5 kl ce agreement psnr msssim "${BD[@]}" --out $R/imagenet_mobilenet_v2/bdrate_bpg
  $P plot $R/imagenet_mobilenet_v2/bpg --out $R/imagenet_mobilenet_v2/report_bpg
fi
# 3. other codecs, the NPP unchanged (conditioned on each codec's rate-equivalent BPG QP)
if want codecs; then
  for spec in "jpeg=5,10,20,40,70" "avif=20,30,40,55,70"; do  # inside QP 25..44 (shared/conditioning.py)
    c=${spec%%=*}
    imagenet_task efficientnet_lite0 "$c" "$spec"
    $P bdrate $R/imagenet_efficientnet_lite0/$c --anchor "$c" \
      --metrics top1 kl agreement psnr "${BD[@]}" --out $R/imagenet_efficientnet_lite0/bdrate_$c
  done
fi
# 4. another task: YOLOv5n on COCO val (79 images)
if want coco; then
  $P eval --dataset-kind coco --dataset $COCO --task yolov5n --codecs bpg --qualities $BPG_Q --codec-option bpg:level=8 \
    --preprocess none "$NPP" --out $R/coco_yolov5n/bpg --no-progress "${LIMIT[@]}"
  $P bdrate $R/coco_yolov5n/bpg --anchor "$(anchor bpg)" --metrics map ap50 det_distortion psnr msssim "${BD[@]}" \
    --out $R/coco_yolov5n/bdrate_bpg
fi
# 5. what a human viewer pays: PSNR and MS-SSIM on Kodak (24 images; the task only labels the sweep)
if want kodak; then
  $P eval --dataset-kind folder --dataset $KODAK --task efficientnet_lite0 --codecs bpg --qualities $BPG_Q \
    --codec-option bpg:level=8 --preprocess none "$NPP" --out $R/kodak/bpg --no-progress "${LIMIT[@]}"
  $P bdrate $R/kodak/bpg --anchor "$(anchor bpg)" --metrics psnr msssim "${BD[@]}" --out $R/kodak/bdrate_bpg
fi
