# Sourced by scripts/instructions-per-event.sh and instructions-by-function.sh:
# both run a pipeline on the first 10,000 and the first 50,000 lines of its
# events file under valgrind. Needs $yaml and $events set; sets $text,
# $work and $copy, and defines sample_of.

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
text=$(<"$yaml")
[[ $text == *"$events"* ]] || { echo "$yaml does not read $events" >&2; exit 1; }
lines=$(wc -l <"$events")
((lines >= 50000)) || { echo "$events has $lines lines; 50,000 are needed" >&2; exit 1; }

work=$(mktemp -d)
# Beside the original, so that relative paths in it (plugins) still resolve.
copy=$(mktemp "$(dirname "$yaml")/.sample-XXXXXX.yaml")

# Writes $copy: the pipeline reading the first $1 events.
sample_of() {
  local n=$1
  head -n "$n" "$events" >"$work/events-$n.jsonl"
  printf '%s\n' "${text//"$events"/"$work/events-$n.jsonl"}" >"$copy"
}
