/* spr_h5quiet.c - the process-wide HDF5 lock (spr_h5quiet.h). */
#include "config.h"
#include "spr_h5quiet.h"

#include <pthread.h>

static pthread_mutex_t h5_mutex;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;

static void h5_mutex_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&h5_mutex, &a);
  pthread_mutexattr_destroy(&a);
}

void spr__h5_lock(void) {
  pthread_once(&h5_once, h5_mutex_init);
  pthread_mutex_lock(&h5_mutex);
}

void spr__h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }
