#!/bin/sh
# Submits the shards of a pseudo-case run as a job array and the merge as a
# job that waits for all of them: afterok starts it only if every task
# succeeded, and --kill-on-invalid-dep cancels it when one failed instead of
# leaving it pending. Run it from a directory every node sees; the runs go
# to runs/ there.
set -eu
here=$(dirname "$0")
array=$(sbatch --parsable "$here/pseudocase.sbatch")
array=${array%%;*} # --parsable prints ID or ID;CLUSTER
sbatch --kill-on-invalid-dep=yes --dependency=afterok:"$array" "$here/pseudocase-merge.sbatch"
