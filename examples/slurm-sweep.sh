#!/bin/bash
# examples/slurm-sweep.sh - a sweep spread over the nodes of a Slurm
# allocation, that survives the time limit, a node failure or a requeue
# (docs/sweep.md, "On a cluster").  Submit from the top of the source tree,
# built with Open MPI (./configure found it: `./sprintsim --version` says
# "MPI: yes"), with the sweep file and an output path:
#
#   sbatch examples/slurm-sweep.sh examples/vit-sweep.ini results/vit-sweep.h5
#
# One MPI rank per node, --cpus-per-task points at once in each: rank 0
# hands the points out in grid order to whichever rank has a free thread,
# records every finished point in results/vit-sweep.journal as it arrives,
# and writes results/vit-sweep.h5 and .csv at the end (the same bytes as one
# process would write).  The output folder must be on a file system every
# node sees (the ranks read the sweep file and its inputs; rank 0 alone
# writes).  Resubmitting the same script (or a requeue) goes on where the
# journal stopped: --resume runs only the missing points, and starts from
# the first point when there is no journal yet.
#
#SBATCH --job-name=sprintsim-sweep
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --time=1-00:00:00
#SBATCH --requeue
#SBATCH --output=sprintsim-sweep-%j.log
set -euo pipefail

CONFIG=${1:?usage: sbatch examples/slurm-sweep.sh SWEEP.ini OUT.h5}
OUT=${2:?usage: sbatch examples/slurm-sweep.sh SWEEP.ini OUT.h5}
mkdir -p "$(dirname "$OUT")"

# one BLAS thread per point; the points are the parallel unit
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive

# At the time limit Slurm sends SIGTERM to every rank, then SIGKILL after
# KillWait (30 s by default): the running points stop, the finished ones
# are already in the journal either way.  --progress: the log file gets a
# line per finished point with the elapsed time and an ETA.
run=(./sprintsim sweep "$CONFIG" -o "$OUT" --threads "$OMP_NUM_THREADS" --resume --progress)

# srun starts the ranks through PMIx (Debian's Open MPI and Slurm both
# support it); where Slurm lacks it, Open MPI's mpirun reads the
# allocation itself: mpirun --map-by ppr:1:node:PE=$OMP_NUM_THREADS "${run[@]}"
srun --mpi=pmix --cpus-per-task="$OMP_NUM_THREADS" "${run[@]}"
