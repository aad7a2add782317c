#!/usr/bin/env bash
# A serving rank killed (SIGKILL) in the middle of a map: Open MPI cannot let the other ranks go on
# without it, so the job must end, promptly and by itself, with a message naming the lost rank, and
# leave no process of the job behind. Usage: rank_lost.sh MPIRUN PROGRAM
set -uo pipefail
mpirun=$1
program=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# `timeout` only guards the test against a hang (the failure this test exists to catch).
timeout 120 "$mpirun" --oversubscribe -n 4 "$program" > "$out" 2>&1 &
job=$!
for _ in $(seq 600); do
  grep -q "map under way" "$out" && break
  kill -0 $job 2> /dev/null || break
  sleep 0.1
done
grep -q "map under way" "$out" || { echo "the map never got under way:"; cat "$out"; kill $job 2> /dev/null; exit 1; }
victim=$(sed -n 's/^rank 2 pid \([0-9]*\)$/\1/p' "$out")
[ -n "$victim" ] || { echo "rank 2 did not report its pid:"; cat "$out"; exit 1; }
echo "killing serving rank 2 (pid $victim) mid-map"
killed_at=$(date +%s%N)
kill -KILL "$victim"
wait $job
status=$?
ended_at=$(date +%s%N)
cat "$out"
echo "the job ended $(( (ended_at - killed_at) / 1000000 )) ms after the kill"
[ $status -ne 124 ] || { echo "FAIL: the job was still running 120 s later (it hangs)"; exit 1; }
[ $status -ne 0 ] || { echo "FAIL: the job ended with status 0 after losing a rank"; exit 1; }
grep -q "map finished" "$out" && { echo "FAIL: the map claims to have finished without rank 2"; exit 1; }
grep -q "process rank 2 .*signal 9" "$out" || { echo "FAIL: no message names the lost rank 2"; exit 1; }
# No rank, and no local worker forked by one, outlives the job (workers leave within a tenth of a
# second of their rank; allow more on a loaded machine).
name=$(basename "$program")
for _ in $(seq 100); do
  pgrep -x "$name" > /dev/null || break
  sleep 0.1
done
if pgrep -x "$name" > /dev/null; then
  echo "FAIL: processes of the job are left behind:"; pgrep -ax "$name"; exit 1
fi
echo "ok: the job ended with status $status and named the lost rank"
