#!/usr/bin/env bash
# Submits vahanorm-array.sh as a job array sized to the list:
#
#   scripts/slurm/submit.sh LIST TARGET OUTDIR [sbatch options...] [-- vahanorm apply options...]
#
# --array=0-(tasks-1) with tasks = ceil(lines / VAHANORM_PER_TASK) (default 1 input per task);
# logs go to OUTDIR/logs/<job name>-<job>_<task>.out. sbatch options given here override the
# script's #SBATCH defaults (e.g. --cpus-per-task=4 --mem=8G --time=2:00:00 --wait).
# Environment: VAHANORM_PER_TASK (inputs per task), VAHANORM_MAX_RUNNING (adds %K to
# --array: at most K tasks at once), SBATCH (the sbatch command, default sbatch), and
# everything vahanorm-array.sh reads (VAHANORM_BIN, VAHANORM_DEVICE, ...), which sbatch
# passes on to the job with its default --export=ALL.
# Exit status: sbatch's (with --wait: the highest exit code of the tasks); 64 for bad
# arguments, 66 for a missing list or target.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() {
    echo "usage: submit.sh LIST TARGET OUTDIR [sbatch options...] [-- vahanorm apply options...]" >&2
    echo "  e.g. VAHANORM_PER_TASK=4 scripts/slurm/submit.sh slides.txt target.json out/ --cpus-per-task=8 --time=4:00:00" >&2
    exit 64
}
die() { local code=$1; shift; echo "submit.sh: error: $*" >&2; exit "$code"; }

[[ ${1:-} == -h || ${1:-} == --help ]] && usage
(($# >= 3)) || usage
list=$1 target=$2 outdir=$3
shift 3
sbatch_args=()
while (($#)); do
    [[ $1 == -- ]] && { shift; break; }
    sbatch_args+=("$1")
    shift
done
apply_args=("$@")

per_task=${VAHANORM_PER_TASK:-1}
[[ $per_task =~ ^[1-9][0-9]*$ ]] || die 64 "VAHANORM_PER_TASK must be a positive integer, got '$per_task'"
[[ -f $list && -r $list ]] || die 66 "$list: list of inputs not found or unreadable"
[[ -f $target && -r $target ]] || die 66 "$target: target model not found or unreadable"

# Lines, counting a last line without a newline; blank and comment lines keep their index.
lines=$(awk 'END { print NR }' "$list")
inputs=$(awk '!/^[[:space:]]*$/ && !/^#/' "$list" | wc -l)
((inputs > 0)) || die 66 "$list: no inputs"

# Every array task writes into OUTDIR/<stem>.<ext>: two inputs with one stem (a/x.svs and
# b/x.svs) would write one output, and the second would be "skipped". Refuse that here.
dups=$(awk '!/^[[:space:]]*$/ && !/^#/ { sub(/\r$/, ""); n = split($0, p, "/"); s = p[n]; sub(/\.[^.]*$/, "", s); if (seen[s]++ == 1) print s }' "$list")
if [[ -n $dups ]]; then
    die 64 "inputs share a file name stem and would write the same output in $outdir:"$'\n'"$dups"$'\n'"split the list by stem, or give each group its own OUTDIR"
fi

# Absolute paths, so that an --chdir among the sbatch options changes nothing (the lines of
# the list stay relative to the job's working directory).
list=$(realpath -- "$list") target=$(realpath -- "$target") outdir=$(realpath -m -- "$outdir")

tasks=$(((lines + per_task - 1) / per_task))
scontrol=${SCONTROL:-scontrol}
max_array=$("$scontrol" show config 2>/dev/null | awk '$1 == "MaxArraySize" { print $3 }' || true)
if [[ $max_array =~ ^[0-9]+$ ]] && ((tasks > max_array)); then
    need=$(((lines + max_array - 1) / max_array))
    die 64 "$tasks array tasks exceed this cluster's MaxArraySize=$max_array: set VAHANORM_PER_TASK=$need (or more)"
fi

array="0-$((tasks - 1))"
[[ -n ${VAHANORM_MAX_RUNNING:-} ]] && array+="%$VAHANORM_MAX_RUNNING"
mkdir -p -- "$outdir/logs" "$outdir/reports"
echo "submit.sh: $inputs input(s) in $lines line(s) of $list, $per_task per task: --array=$array" >&2
exec ${SBATCH:-sbatch} --array="$array" --output="${outdir%/}/logs/%x-%A_%a.out" "${sbatch_args[@]}" \
    "$here/vahanorm-array.sh" --per-task "$per_task" "$list" "$target" "$outdir" "${apply_args[@]}"
