#!/usr/bin/env bash
# Instructions per event of eval-bench contenders, counted with callgrind
# (issue 9, acceptance 6). Instruction counts do not depend on what else
# the machine is doing, so this is the number to compare across builds.
#
#   benches/instructions.sh                      # rule/ours_full and rule/rhai_unrolled
#   benches/instructions.sh 'rule/ours_full_ref' 'rule_mix/ours_full'
#   ALLOCATOR=system benches/instructions.sh     # the system allocator instead
#                                                # of mimalloc (the binary's)
#
# Each contender runs in its own valgrind process: `per_event` (never
# inlined) wraps exactly one event through the contender and the drop of
# what it returned, so the inclusive cost on the call edges into it,
# divided by their call count, is the cost of one event.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0

ALLOCATOR=${ALLOCATOR:-mimalloc}
case "$ALLOCATOR" in
  mimalloc) FEATURES=() ;;
  system) FEATURES=(--no-default-features) ;;
  *) echo "error: ALLOCATOR is mimalloc or system, not '$ALLOCATOR'" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "error: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

if [ $# -eq 0 ]; then set -- rule/ours_full rule/rhai_unrolled; fi

# The path of the bench binary cargo just built (its JSON messages name it).
BIN=$(cargo bench --bench eval "${FEATURES[@]}" --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\/eval-[^"]*\)".*/\1/p' | tail -n1)
[ -x "$BIN" ] || { echo "error: could not find the eval bench binary" >&2; exit 1; }

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

printf '| contender | instructions per event | events counted | allocator |\n| --- | --- | --- | --- |\n'
for name in "$@"; do
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
    "$BIN" --bench --profile-time 1 "^${name}\$" >"$OUT/log" 2>&1 ||
    { cat "$OUT/log" >&2; echo "error: valgrind failed on $name" >&2; exit 1; }
  # Names are compressed: `cfn=(12) name` the first time, `cfn=(12)` after.
  # After each `cfn=` into per_event: `calls=N ...`, then a line whose
  # second number is the inclusive cost of those N calls.
  read -r calls cost < <(awk '
    /^c?fn=\(/ {
      id = $1; sub(/^c?fn=/, "", id)
      if (NF > 1) { n = $0; sub(/^[^ ]* /, "", n); names[id] = n }
      into = ($1 ~ /^cfn=/) && (names[id] ~ /per_event/)
      next
    }
    into && /^calls=/ { split($1, c, "="); pending = c[2]; next }
    into && pending != "" { calls += pending; cost += $2; pending = "" }
    END { printf "%d %d\n", calls, cost }
  ' "$OUT/cg.out")
  [ "$calls" -gt 0 ] || { echo "error: no calls into per_event for $name (is the name right?)" >&2; exit 1; }
  printf '| `%s` | %s | %s | %s |\n' "$name" "$(awk -v c="$cost" -v n="$calls" 'BEGIN { printf "%.1f K", c / n / 1000 }')" "$calls" "$ALLOCATOR"
done
