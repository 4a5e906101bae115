#!/usr/bin/env bash
# Throughput and peak memory of docaiche-extract against poppler's pdftotext,
# on the same corpus, in the same run.
#
# Usage:
#   ./scripts/bench-extract.sh [CORPUS_DIR] [REPEAT]
#     CORPUS_DIR  directory of *.pdf (default /work/shared/corpus/pdf; its
#                 MANIFEST.tsv gives page counts, else pdfinfo does)
#     REPEAT      timed passes per configuration, the median is reported (default 3)
#
# Both tools run one process per document (`xargs -P N`), so process start-up
# is in both figures: N=1 (one worker; our page parallelism is switched off
# with RAYON_NUM_THREADS=1) and N=all cores. A last line runs our extractor
# over the whole corpus in one process (no start-up cost; pdftotext has no
# such mode). Peak RSS is GNU time's "Maximum resident set size" on the
# largest file. Needs pdftotext (apt-get install poppler-utils) and
# /usr/bin/time (apt-get install time).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

corpus=${1:-/work/shared/corpus/pdf}
repeat=${2:-3}
cores=$(nproc)

command -v pdftotext >/dev/null || { echo "pdftotext not found (apt-get install poppler-utils)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 1; }

cargo build --quiet --release -p docaiche-extract --example pdftext
ours="${CARGO_TARGET_DIR:-$REPO/target}/release/examples/pdftext"

mapfile -t files < <(find "$corpus" -maxdepth 1 -name '*.pdf' | sort)
docs=${#files[@]}
((docs > 0)) || { echo "no PDFs in $corpus" >&2; exit 1; }

pages=0
for f in "${files[@]}"; do
    n=""
    if [[ -f $corpus/MANIFEST.tsv ]]; then
        n=$(awk -F'\t' -v f="$(basename "$f")" 'NR>1 && $1==f {print $5}' "$corpus/MANIFEST.tsv")
    fi
    [[ -n $n ]] || n=$(pdfinfo "$f" 2>/dev/null | awk '/^Pages:/ {print $2}')
    pages=$((pages + ${n:-0}))
done

# median of the wall times (seconds) of $repeat runs of "$@"
timed() {
    local times=() t0 t1
    for ((i = 0; i < repeat; i++)); do
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || true
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

per_doc() { # jobs, command...
    local jobs=$1
    shift
    printf '%s\0' "${files[@]}" | xargs -0 -n 1 -P "$jobs" "$@"
}

printf 'corpus: %s (%d documents, %d pages), %d cores, median of %d passes\n\n' \
    "$corpus" "$docs" "$pages" "$cores" "$repeat"
printf '%-34s %8s %9s %10s %10s\n' "configuration" "workers" "seconds" "docs/s" "pages/s"

declare -A pps
row() { # label, workers, seconds
    local d p
    d=$(echo "$docs / $3" | bc -l)
    p=$(echo "$pages / $3" | bc -l)
    pps["$1/$2"]=$p
    printf '%-34s %8s %9.2f %10.1f %10.1f\n' "$1" "$2" "$3" "$d" "$p"
}

# Warm the page cache.
cat "${files[@]}" >/dev/null

for jobs in 1 "$cores"; do
    if ((jobs == 1)); then export RAYON_NUM_THREADS=1; else unset RAYON_NUM_THREADS; fi
    row "pdftotext (process per doc)" "$jobs" "$(timed per_doc "$jobs" sh -c 'pdftotext -enc UTF-8 "$1" -' _)"
    row "docaiche-extract (process per doc)" "$jobs" "$(timed per_doc "$jobs" "$ours")"
done
export RAYON_NUM_THREADS=1
row "docaiche-extract (one process)" 1 "$(timed "$ours" "${files[@]}")"
unset RAYON_NUM_THREADS
row "docaiche-extract (one process)" "$cores" "$(timed "$ours" "${files[@]}")"

printf '\nratio ours/pdftotext pages/s: 1 worker %.2f, %d workers %.2f\n' \
    "$(echo "${pps["docaiche-extract (process per doc)/1"]} / ${pps["pdftotext (process per doc)/1"]}" | bc -l)" \
    "$cores" \
    "$(echo "${pps["docaiche-extract (process per doc)/$cores"]} / ${pps["pdftotext (process per doc)/$cores"]}" | bc -l)"

largest=$(ls -S "${files[@]}" | head -n 1)
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
printf '\npeak RSS on the largest file (%s, %d bytes):\n' "$(basename "$largest")" "$(stat -c %s "$largest")"
printf '  pdftotext         %8d KiB\n' "$(rss pdftotext -enc UTF-8 "$largest" -)"
printf '  docaiche-extract  %8d KiB (all cores)\n' "$(rss "$ours" "$largest")"
printf '  docaiche-extract  %8d KiB (RAYON_NUM_THREADS=1)\n' "$(RAYON_NUM_THREADS=1 rss "$ours" "$largest")"
