#!/usr/bin/env bash
# Multi-GPU (and multi-node) training in the tokzoo image with accelerate launch.
#
#   docker/launch.sh RECIPE.yaml [key=value ...]                       # every GPU of this machine
#   GPUS=4 docker/launch.sh train/titok/titok_s128_stage1.yaml data.batch_size=32
#   NODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 docker/launch.sh RECIPE.yaml   # on the first node
#   NODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 docker/launch.sh RECIPE.yaml   # on the second
#
# Environment: IMAGE (default tokzoo), GPUS (default: all of this machine's, via nvidia-smi),
# NODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500), DATA (./data, mounted at
# /data), OUTPUTS (./outputs, mounted at /opt/tokzoo/outputs), CACHE (~/.cache, for checkpoints,
# converted models and FID statistics), PRECISION (bf16). Several nodes use the host network so
# the processes reach each other; every node must see the same data and recipe.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
recipe=$1
shift
IMAGE=${IMAGE:-tokzoo}
GPUS=${GPUS:-$(nvidia-smi --list-gpus 2>/dev/null | wc -l)}
NODES=${NODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
DATA=${DATA:-$PWD/data}
OUTPUTS=${OUTPUTS:-$PWD/outputs}
CACHE=${CACHE:-$HOME/.cache}
PRECISION=${PRECISION:-bf16}
if [[ "$GPUS" -lt 1 ]]; then
    echo "launch.sh: no GPU found (set GPUS=N)" >&2
    exit 2
fi
network=()
if [[ "$NODES" -gt 1 ]]; then
    network=(--network host)
fi
mkdir -p "$OUTPUTS"
exec docker run --rm --gpus all --ipc=host "${network[@]}" \
    -v "$DATA:/data" -v "$OUTPUTS:/opt/tokzoo/outputs" -v "$CACHE:/root/.cache" \
    "$IMAGE" accelerate launch --multi_gpu --mixed_precision "$PRECISION" \
    --num_machines "$NODES" --machine_rank "$NODE_RANK" --num_processes $((GPUS * NODES)) \
    --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" \
    -m vistok.engine.train "$recipe" "$@"
