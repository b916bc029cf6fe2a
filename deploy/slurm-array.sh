#!/bin/bash
# A Slurm job array of 16 tasks, one share each. `--shard auto` reads
# SLURM_ARRAY_TASK_ID, _MIN, _STEP and _COUNT, so --array=0-15 and --array=1-16
# both work. Submit: sbatch deploy/slurm-array.sh
# Then, once the array is done (JOB is the array's job id):
#   trawl merge parts/JOB/part-*.jsonl -o all.jsonl --summary summary.json
# Each submission writes into its own folder, parts/JOB: a requeued task keeps
# its job id and resumes its part; the next night's submission starts fresh.
#SBATCH --job-name=trawl
#SBATCH --array=0-15
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
# Slurm does not create the --output folder: run `mkdir -p logs` before sbatch.
# --open-mode=append: a requeued task keeps the failed attempt's log.
# Redo one failed task with `scontrol requeue JOB_TASK` or by resubmitting the
# full range; never `--array=K` alone: that task then reads as share 1/1, and
# `--resume` refuses its part (exit 2) rather than mix shares.
#SBATCH --output=logs/trawl-%a.log
#SBATCH --open-mode=append
set -euo pipefail
parts="parts/${SLURM_ARRAY_JOB_ID}"
mkdir -p "$parts"
# --resume: a requeued task finishes its share instead of starting over.
exec trawl urls.txt --shard auto --resume --progress \
    -o "$parts/part-${SLURM_ARRAY_TASK_ID}.jsonl" --allow-failures 2%
