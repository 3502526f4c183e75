/* cmd_mpi_none.c - cmd_mpi.h in a build without MPI: nothing is
 * available, and `sprintsim` under an MPI launcher with several ranks is
 * refused (main.c) before any of these could be called. */
#include "config.h"
#include "cmd_mpi.h"

int cmd_mpi_available(void) { return 0; }
int cmd_mpi_init(int *argc, char ***argv, int *rank, int *size) {
  (void)argc, (void)argv;
  *rank = 0;
  *size = 1;
  return -1;
}
void cmd_mpi_finalize(void) {}
void cmd_mpi_abort(int status) { (void)status; }
int cmd_mpi_local_ranks(void) { return 1; }
const char *cmd_mpi_host(void) { return "localhost"; }
int cmd_mpi_send(int to, const void *buf, size_t len) {
  (void)to, (void)buf, (void)len;
  return -1;
}
int cmd_mpi_poll(void *buf, size_t cap, int *from, size_t *len) {
  (void)buf, (void)cap, (void)from, (void)len;
  return -1;
}
int cmd_mpi_bcast(void *buf, size_t len) {
  (void)buf, (void)len;
  return -1;
}
int cmd_mpi_gather(const void *buf, size_t len, void *all) {
  (void)buf, (void)len, (void)all;
  return -1;
}
