# dom0-costs: run the micro-benchmark twice (medians inside each run) and log its lines.
for run in 1 2; do
    dom0_costs /tmp /out >"$OUT/costs-$run.txt" 2>&1 || result ERROR "dom0_costs failed: $(tail -n 1 "$OUT/costs-$run.txt")"
    while read -r line; do log "run $run: $line"; done <"$OUT/costs-$run.txt"
done
result SUCCESS "figures in costs-1.txt, costs-2.txt"
