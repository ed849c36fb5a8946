#!/usr/bin/env bash
# Runs every fuzz target of the repository (each `func FuzzXxx` in a
# _test.go file) for FUZZTIME, one after the other. With FUZZ_REPORT set,
# writes a Markdown table of the executions each target ran.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
rows=""
passed=0
for file in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | sort); do
  dir=$(dirname "$file")
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
    echo ">> fuzzing $target in ./$dir for $FUZZTIME"
    corpus="$dir/testdata/fuzz/$target"
    before=$( (ls "$corpus" 2>/dev/null || true) | wc -l)
    for try in 1 2; do
      if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1); then
        break
      fi
      # Go 1.26's fuzz coordinator can report the end of -fuzztime itself as
      # a failure, "context deadline exceeded" with no failing input
      # (go.dev/issue/75804, fixed in Go 1.27). Only that is tried again,
      # once; a failure that wrote an input to testdata fails at once.
      after=$( (ls "$corpus" 2>/dev/null || true) | wc -l)
      if [ "$try" = 1 ] && [ "$after" = "$before" ] && echo "$out" | grep -q '^    context deadline exceeded$'; then
        echo "   go.dev/issue/75804: the fuzzing deadline was reported as a failure, no input written; running $target again"
        continue
      fi
      echo "$out"
      exit 1
    done
    execs=$(echo "$out" | sed -n 's/.*execs: \([0-9]*\) .*/\1/p' | tail -1)
    echo "   ${execs:-?} executions, no failure"
    rows+="| \`$target\` | \`./$dir\` | ${execs:-?} |"$'\n'
    passed=$((passed + 1))
  done
done
echo "fuzz: $passed passed, 0 failed"
if [ -n "${FUZZ_REPORT:-}" ]; then
  {
    echo "# Fuzzing: figures of the last \`make soak\`"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`hack/fuzz.sh\` with FUZZTIME=$FUZZTIME per target; no target found a failure."
    echo
    echo "| target | package | executions |"
    echo "|---|---|---|"
    printf '%s' "$rows"
  } > "$FUZZ_REPORT"
fi
