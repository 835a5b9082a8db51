#!/usr/bin/env bash
# vahanorm over a list of slides as a SLURM job array: one slide per array task (or N per
# task), idempotent and resumable. docs/hpc.md has the whole story.
#
#   sbatch --array=0-$((n-1)) vahanorm-array.sh [--per-task N] LIST TARGET OUTDIR [APPLY OPTIONS...]
#   scripts/slurm/submit.sh LIST TARGET OUTDIR [SBATCH OPTIONS...]     (computes --array for you)
#
# LIST    text file, one input path per line (relative paths are relative to the directory
#         sbatch was run in); blank lines and lines starting with '#' are skipped, but they
#         still count: task i handles lines i*N .. i*N+N-1 (0-based).
# TARGET  target model from `vahanorm fit` (JSON).
# OUTDIR  outputs go to OUTDIR/<input stem>.tif (slides) or OUTDIR/<name> (tiles); the
#         task's report goes to OUTDIR/reports/task-<array job id>-<task id>.json.
# APPLY OPTIONS are passed to `vahanorm apply` (e.g. --format tiff --qc OUTDIR/qc).
#
# Environment:
#   VAHANORM_BIN       the vahanorm binary (default: vahanorm on PATH)
#   VAHANORM_PER_TASK  inputs per array task (default 1; --per-task wins)
#   VAHANORM_DEVICE    --device value (default: auto when the job has GPUs, else cpu)
#   VAHANORM_THREADS   --threads value (default: vahanorm uses $SLURM_CPUS_PER_TASK)
#   VAHANORM_TASK_ID   task index when not run as an array task (GNU parallel, xargs, tests)
#   VAHANORM_RUN_NAME  report name prefix outside SLURM (default local-<UTC time>)
#
# The exit status is vahanorm's: 0 ok, 3 some inputs failed, 64 usage, 65 data, 66 input,
# 69 device, 70 internal, 73 output, 75 interrupted (rerun to finish). vahanorm is exec'd, so
# the SIGTERM that SLURM sends on scancel, time limit or preemption reaches it directly: it
# stops within seconds, removes its temporary files and exits 75.
#
# The defaults below suit one slide per task; the command line of sbatch overrides them.
#SBATCH --job-name=vahanorm
#SBATCH --cpus-per-task=8
#SBATCH --mem=2G
#SBATCH --time=01:00:00
#SBATCH --output=vahanorm-%A_%a.out
## One GPU per task (remove one '#' to enable; names of GPU types vary by site):
##SBATCH --gres=gpu:1
## Put a preempted or failed-node task back in the queue (it resumes: done slides are skipped):
##SBATCH --requeue
## SIGTERM to vahanorm 120 s before the time limit, so the last slide stops cleanly ("B:":
## vahanorm is the batch shell; without it only srun steps would get the signal):
##SBATCH --signal=B:TERM@120
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: vahanorm-array.sh [--per-task N] LIST TARGET OUTDIR [vahanorm apply options...]

Runs `vahanorm apply --skip-existing` on the lines of LIST that belong to this array task
(SLURM_ARRAY_TASK_ID, 0-based; N lines per task, default 1 or $VAHANORM_PER_TASK) and
writes OUTDIR/reports/task-<job>-<task>.json.
  sbatch --array=0-$(( $(wc -l < slides.txt) - 1 )) vahanorm-array.sh slides.txt target.json out/
  scripts/slurm/submit.sh slides.txt target.json out/          # the same, --array computed
Environment: VAHANORM_BIN, VAHANORM_PER_TASK, VAHANORM_DEVICE, VAHANORM_THREADS,
VAHANORM_TASK_ID (outside SLURM), VAHANORM_RUN_NAME. See docs/hpc.md.
EOF
    exit 64
}

log() { printf 'vahanorm-array: %s\n' "$*" >&2; }
die() { local code=$1; shift; log "error: $*"; exit "$code"; }

per_task=${VAHANORM_PER_TASK:-1}
while (($#)); do
    case $1 in
        -h|--help) usage ;;
        --per-task) (($# >= 2)) || usage; per_task=$2; shift 2 ;;
        --per-task=*) per_task=${1#*=}; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
(($# >= 3)) || usage
list=$1 target=$2 outdir=$3
shift 3

[[ $per_task =~ ^[1-9][0-9]*$ ]] || die 64 "--per-task / VAHANORM_PER_TASK must be a positive integer, got '$per_task'"
[[ -f $list && -r $list ]] || die 66 "$list: list of inputs not found or unreadable"
[[ -f $target && -r $target ]] || die 66 "$target: target model not found or unreadable"

if [[ -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
    task=$SLURM_ARRAY_TASK_ID
    run=${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-slurm}}
elif [[ -n ${VAHANORM_TASK_ID:-} ]]; then
    task=$VAHANORM_TASK_ID
    run=${VAHANORM_RUN_NAME:-local-$(date -u +%Y%m%dT%H%M%SZ)}
else
    log "error: not an array task (no SLURM_ARRAY_TASK_ID): submit with sbatch --array=0-N, or use"
    log "       scripts/slurm/submit.sh, or set VAHANORM_TASK_ID to run one task by hand"
    usage
fi
[[ $task =~ ^[0-9]+$ ]] || die 64 "task id must be a non-negative integer, got '$task'"

bin=${VAHANORM_BIN:-vahanorm}
command -v -- "$bin" >/dev/null 2>&1 || die 127 "$bin: vahanorm binary not found (set VAHANORM_BIN or PATH)"

# Lines first..last (1-based, inclusive) of the list; blank and comment lines are dropped.
first=$((task * per_task + 1))
last=$((first + per_task - 1))
inputs=()
while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    inputs+=("$line")
done < <(sed -n "${first},${last}p" -- "$list")
if ((${#inputs[@]} == 0)); then
    log "task $task: lines $first-$last of $list hold no inputs; nothing to do"
    exit 0
fi

mkdir -p -- "$outdir/reports" || die 73 "$outdir: cannot create the output directory"
# Absolute, so that the reports name outputs that the gather step finds from anywhere.
outdir=$(realpath -- "$outdir")

# A requeued task (preemption, node failure) keeps its job and task ids: keep its earlier
# report too, so that the gather step still sees what that run produced.
name="task-$run-$task"
[[ ${SLURM_RESTART_COUNT:-0} != 0 ]] && name+="-r$SLURM_RESTART_COUNT"
report="$outdir/reports/$name.json"
n=1
while [[ -e $report ]]; do
    n=$((n + 1))
    report="$outdir/reports/$name-$n.json"
done

# The device: what the user asked for, else auto when SLURM gave the job GPUs.
device=${VAHANORM_DEVICE:-}
if [[ -z $device ]]; then
    gpus=${CUDA_VISIBLE_DEVICES:-${SLURM_STEP_GPUS:-${SLURM_JOB_GPUS:-}}}
    if [[ -n $gpus && $gpus != NoDevFiles ]]; then device=auto; else device=cpu; fi
fi
global=(--device "$device" --report "$report")
[[ -n ${VAHANORM_THREADS:-} ]] && global+=(--threads "$VAHANORM_THREADS")

log "task $task of ${run}: lines $first-$last of $list (${#inputs[@]} input(s)), device $device," \
    "threads ${VAHANORM_THREADS:-${SLURM_CPUS_PER_TASK:-all}}, host $(hostname -s 2>/dev/null || echo '?')," \
    "report $report"
# exec: vahanorm replaces this shell, so SLURM's SIGTERM reaches it and its exit code is the
# task's. (Not trap + wait: SLURM signals every process of the step, so vahanorm would get the
# SIGTERM twice, and a second signal ends it at once, leaving its temporary file behind.)
# Options after the subcommand: extra global options in "$@" work there too.
exec "$bin" apply "${global[@]}" --skip-existing --target "$target" -o "$outdir/" "$@" -- "${inputs[@]}"
