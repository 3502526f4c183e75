/* cmd_mpi.h - the little of MPI that `sprintsim sweep` uses to spread its
 * points over ranks (docs/sweep.md, "On a cluster").  Internal to the
 * program.  With Open MPI (configure found it) sim/cmd_mpi.c implements
 * it; without, sim/cmd_mpi_none.c, where cmd_mpi_available() is 0 and
 * nothing else may be called.  The library never sees MPI.
 *
 * Only the main thread calls these (MPI_THREAD_FUNNELED); every message
 * is a small byte buffer (at most CMD_MPI_MAX_MSG bytes) on one tag of
 * MPI_COMM_WORLD, so messages between two ranks arrive in order. */
#ifndef SPR_CMD_MPI_H
#define SPR_CMD_MPI_H

#include <stddef.h>

#define CMD_MPI_MAX_MSG 4096

/* 1 when this program was built with MPI. */
int cmd_mpi_available(void);

/* The number of processes an MPI launcher (mpirun, mpiexec, srun) started
 * this program among, from its environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
 * PMIX_SIZE, MPI_LOCALNRANKS, SLURM_STEP_NUM_TASKS in an srun step), and
 * this process's rank in *rank; 0 when not started by one.  Works without
 * MPI (cmd_common.c). */
int cmd_mpi_launched(int *rank);

/* MPI_Init_thread (FUNNELED); *rank, *size of MPI_COMM_WORLD.  Returns 0,
 * or -1 after printing why on stderr. */
int cmd_mpi_init(int *argc, char ***argv, int *rank, int *size);
void cmd_mpi_finalize(void);
/* Abort every rank (after a failure that leaves the ranks out of step). */
void cmd_mpi_abort(int status);

/* Ranks on this node (the shared-memory communicator's size). */
int cmd_mpi_local_ranks(void);
/* This node's name. */
const char *cmd_mpi_host(void);

/* Send len bytes to rank `to` (blocking; small messages are buffered).
 * Returns 0 or -1. */
int cmd_mpi_send(int to, const void *buf, size_t len);
/* Receive a waiting message, if any, into buf[cap]: 1 (*from, *len set),
 * 0 none waiting, -1 error. */
int cmd_mpi_poll(void *buf, size_t cap, int *from, size_t *len);
/* Rank 0's len bytes to every rank. */
int cmd_mpi_bcast(void *buf, size_t len);
/* Every rank's len bytes to rank 0, in rank order into all (size x len;
 * NULL on other ranks). */
int cmd_mpi_gather(const void *buf, size_t len, void *all);

#endif
