/* cmd_mpi.c - cmd_mpi.h over Open MPI (built only when configure finds
 * it; the library and the other commands never see MPI). */
#include "config.h"
#include "cmd_mpi.h"
#include "cmd.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#define TAG 7131

int cmd_mpi_available(void) { return 1; }

int cmd_mpi_init(int *argc, char ***argv, int *rank, int *size) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "%s: sweep: MPI_Init_thread failed\n", cmd_prog);
    return -1;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  if (provided < MPI_THREAD_FUNNELED) {
    if (*rank == 0)
      fprintf(stderr, "%s: sweep: this MPI library offers no thread support (MPI_THREAD_FUNNELED "
              "needed: the points run on threads inside each rank)\n", cmd_prog);
    MPI_Finalize();
    return -1;
  }
  return 0;
}

void cmd_mpi_finalize(void) { MPI_Finalize(); }

void cmd_mpi_abort(int status) { MPI_Abort(MPI_COMM_WORLD, status); }

int cmd_mpi_local_ranks(void) {
  MPI_Comm node;
  int n = 1;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
  }
  return n;
}

const char *cmd_mpi_host(void) {
  static char name[MPI_MAX_PROCESSOR_NAME + 1];
  int len = 0;
  if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS) snprintf(name, sizeof name, "?");
  return name;
}

int cmd_mpi_send(int to, const void *buf, size_t len) {
  if (len > CMD_MPI_MAX_MSG) return -1;
  return MPI_Send(buf, (int)len, MPI_BYTE, to, TAG, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

int cmd_mpi_poll(void *buf, size_t cap, int *from, size_t *len) {
  int flag = 0, n = 0;
  MPI_Status st;
  if (MPI_Iprobe(MPI_ANY_SOURCE, TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS) return -1;
  if (!flag) return 0;
  if (MPI_Get_count(&st, MPI_BYTE, &n) != MPI_SUCCESS || n < 0 || (size_t)n > cap) return -1;
  if (MPI_Recv(buf, n, MPI_BYTE, st.MPI_SOURCE, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE) !=
      MPI_SUCCESS)
    return -1;
  *from = st.MPI_SOURCE;
  *len = (size_t)n;
  return 1;
}

int cmd_mpi_bcast(void *buf, size_t len) {
  return MPI_Bcast(buf, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

int cmd_mpi_gather(const void *buf, size_t len, void *all) {
  return MPI_Gather(buf, (int)len, MPI_BYTE, all, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD) ==
                 MPI_SUCCESS
             ? 0
             : -1;
}
