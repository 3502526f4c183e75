/* fuzz_qkv.c - the Q/K/V reader (workloads/spr_qkv.c) through the isolated
 * HDF5 reader (core/spr_h5r.c).
 *
 * Built twice: fuzz_qkv_bytes takes the input as the file's bytes;
 * fuzz_qkv_struct (-DFUZZ_STRUCT) reads the input as a recipe and builds
 * the file through the HDF5 API (attributes of every string padding and
 * wrong types, layer groups misnumbered, datasets of odd types, shapes,
 * layouts and filters, values NaN or beyond float32, masks of any value).
 *
 * Properties: this process never crashes (libhdf5 runs in a child); a
 * refused file gives an error naming it; for an accepted file every head
 * of every item reads (or fails naming the file), and what was read,
 * written back by the Q/K/V writer, reads back to the same floats. */
#include "config.h"
#include "fuzz_common.h"
#include "spr_qkv.h"

#ifdef FUZZ_STRUCT
static void put_str(hid_t loc, const char *name, const char *v, recipe *r) {
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  const unsigned how = pick(r, 5);
  size_t len = strlen(v);
  if (how == 3) H5Tset_size(ty, H5T_VARIABLE);
  else H5Tset_size(ty, how == 0 ? len + 1 : how == 4 ? len + pick(r, 4) : len ? len : 1);
  H5Tset_strpad(ty, how == 1 ? H5T_STR_NULLPAD : how == 2 ? H5T_STR_SPACEPAD : H5T_STR_NULLTERM);
  if (pick(r, 2)) H5Tset_cset(ty, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  char buf[64] = "";
  snprintf(buf, sizeof buf, "%s", v);
  if (how == 3) {
    const char *p = buf;
    H5Awrite(a, ty, &p);
  } else {
    H5Awrite(a, ty, buf);
  }
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
}

static hid_t float_type(recipe *r) {
  switch (pick(r, 12)) {
  case 0: return H5Tcopy(H5T_IEEE_F64LE);
  case 1: return H5Tcopy(H5T_IEEE_F32BE);
  case 2: return H5Tcopy(H5T_IEEE_F64BE);
  case 3: return H5Tcopy(H5T_STD_I32LE);
  case 4: { /* a 16-bit float */
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_precision(t, 16);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
  }
  case 5: { /* IEEE layout in 12 bytes */
    hid_t t = H5Tcopy(H5T_IEEE_F64LE);
    H5Tset_size(t, 12);
    return t;
  }
  case 6: return H5Tcopy(H5T_NATIVE_UCHAR);
  default: return H5Tcopy(H5T_IEEE_F32LE);
  }
}

/* The file the recipe describes. */
static int build(const char *path, recipe *r) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return -1;
  const char *fmts[] = {"sprintsim-qkv", "sprintsim-qkv", "sprintsim-qkv", "sprintsim-qk", "", "sprintsim-trace"};
  unsigned fm = pick(r, 7);
  if (fm < 6) put_str(f, "format", fmts[fm], r);
  unsigned vk = pick(r, 6);
  hid_t sp0 = H5Screate(H5S_SCALAR);
  if (vk < 4) {
    long long v = vk == 3 ? 2 : 1;
    hid_t vt = vk == 1 ? H5T_STD_I64BE : vk == 2 ? H5T_STD_U8LE : H5T_STD_I32LE;
    hid_t a = H5Acreate2(f, "version", vt, sp0, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
  } else if (vk == 4) {
    put_str(f, "version", "1", r);
  }
  const int L = 1 + (int)pick(r, 3), H = 1 + (int)pick(r, 3), B = (int)pick(r, 3);
  const int N = 1 + (int)pick(r, 7), D = 1 + (int)pick(r, 5);
  const int items = B ? B : 1;
  hid_t ft = float_type(r);
  for (int l = 0; l < L; l++) {
    char g[32];
    const unsigned naming = pick(r, 12);
    snprintf(g, sizeof g, naming == 0 ? "layer_0%d" : naming == 1 ? "layer_%d" : "layer_%d", naming == 1 ? l + 1 : l);
    hid_t grp = H5Gcreate2(f, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0) continue;
    for (int t = 0; t < 3; t++) {
      if (pick(r, 16) == 0) continue; /* missing */
      hsize_t dims[4] = {(hsize_t)B, (hsize_t)H, (hsize_t)N, (hsize_t)D};
      int rank = B ? 4 : 3;
      if (pick(r, 16) == 0) dims[rank - 1 - pick(r, 2)] += 1; /* a shape differing */
      if (pick(r, 24) == 0) rank = 2;
      hid_t sp = H5Screate_simple(rank, B || rank == 2 ? dims : dims + 1, NULL);
      hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      const unsigned lay = pick(r, 5);
      if (lay == 1) H5Pset_layout(dcpl, H5D_COMPACT);
      if (lay >= 2) {
        hsize_t ch[4];
        for (int k = 0; k < rank; k++) ch[k] = (B || rank == 2 ? dims : dims + 1)[k] ? 1 + pick(r, 3) : 1;
        H5Pset_chunk(dcpl, rank, ch);
        if (lay == 3) H5Pset_deflate(dcpl, 1 + pick(r, 9));
        if (lay == 4) {
          H5Pset_shuffle(dcpl);
          H5Pset_fletcher32(dcpl);
        }
      }
      const char *name = t == 0 ? "Q" : t == 1 ? "K" : "V";
      hid_t ds = H5Dcreate2(grp, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      hssize_t np = H5Sget_simple_extent_npoints(sp);
      if (ds >= 0 && np > 0 && np < 100000) {
        double *v = malloc((size_t)np * sizeof *v);
        for (hssize_t k = 0; k < np; k++) v[k] = pick(r, 8) ? ((double)(k % 17) - 8) / 4.0 : pick_double(r);
        H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        free(v);
      }
      if (ds >= 0) H5Dclose(ds);
      H5Pclose(dcpl);
      H5Sclose(sp);
    }
    H5Gclose(grp);
  }
  H5Tclose(ft);
  const unsigned mk = pick(r, 4);
  if (mk) {
    hsize_t md[2] = {(hsize_t)items, (hsize_t)N};
    if (pick(r, 16) == 0) md[1]++;
    hid_t msp = H5Screate_simple(B ? 2 : 1, B ? md : md + 1, NULL);
    hid_t mt = mk == 1 ? H5T_STD_U8LE : mk == 2 ? H5T_STD_I64BE : H5T_IEEE_F32LE;
    hid_t ds = H5Dcreate2(f, "mask", mt, msp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int *m = malloc(sizeof *m * (size_t)(md[0] * md[1]));
    for (hsize_t k = 0; k < md[0] * md[1]; k++) m[k] = pick(r, 12) ? (k % 5 != 3) : (int)pick(r, 4) - 1;
    if (ds >= 0) {
      H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m);
      H5Dclose(ds);
    }
    free(m);
    H5Sclose(msp);
  }
  if (pick(r, 8) == 0) H5Lcreate_soft("/layer_0", f, pick(r, 2) ? "layer_9" : "layers", H5P_DEFAULT, H5P_DEFAULT);
  if (pick(r, 16) == 0) H5Lcreate_external("/etc/hostname", "/", f, pick(r, 2) ? "layer_1" : "mask", H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(sp0);
  H5Fclose(f);
  return 0;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("qkv.h5"), *back = fuzz_path("qkv-back.h5");
  FUZZ_INPUT_FILE(path, data, size);
  spr_qkv *q = NULL;
  int rc = spr_qkv_open(path, &q);
  if (rc) {
    fuzz_check_names(rc, path);
    return 0;
  }
  const spr_qkv_info in = *spr_qkv_get_info(q);
  FUZZ_CHECK(in.n_layers >= 1 && in.n_heads >= 1 && in.seq_len >= 2 && in.head_dim >= 1 && in.batch >= 1,
             "sizes %d %d %d %d %d", in.n_layers, in.n_heads, in.seq_len, in.head_dim, in.batch);
  const double cells = (double)in.n_layers * in.n_heads * in.seq_len * in.head_dim;
  int n = 0;
  if (cells > 4e6 || spr_qkv_item_tokens(q, 0, &n)) {
    spr_qkv_close(q);
    return 0;
  }
  /* item 0, every head, written back as an unbatched file of its real
   * tokens, read back equal */
  const size_t nd = (size_t)n * in.head_dim;
  float *buf = malloc(3 * nd * sizeof *buf * (size_t)in.n_layers * in.n_heads);
  FUZZ_CHECK(buf != NULL, "out of memory");
  int ok = 1;
  for (int l = 0; l < in.n_layers && ok; l++)
    for (int h = 0; h < in.n_heads && ok; h++) {
      float *Q = buf + 3 * nd * ((size_t)l * in.n_heads + h);
      rc = spr_qkv_read_head(q, l, h, 0, Q, Q + nd, Q + 2 * nd);
      if (rc) {
        fuzz_check_names(rc, path);
        ok = 0;
      }
    }
  spr_qkv_close(q);
  if (ok) {
    spr_qkv_writer *w = NULL;
    rc = spr_qkv_create(back, in.n_layers, in.n_heads, 0, n, in.head_dim, NULL, &w);
    FUZZ_CHECK(rc == 0, "writer refuses what the reader accepted");
    for (int l = 0; l < in.n_layers && !rc; l++)
      for (int h = 0; h < in.n_heads && !rc; h++) {
        float *Q = buf + 3 * nd * ((size_t)l * in.n_heads + h);
        rc = spr_qkv_write_head(w, l, h, 0, Q, Q + nd, Q + 2 * nd);
      }
    FUZZ_CHECK(rc == 0, "writing what was read");
    FUZZ_CHECK(spr_qkv_finish(w, 1) == 0, "finish");
    FUZZ_CHECK(spr_qkv_open(back, &q) == 0, "the written file does not open");
    float *again = malloc(3 * nd * sizeof *again);
    for (int l = 0; l < in.n_layers; l++)
      for (int h = 0; h < in.n_heads; h++) {
        FUZZ_CHECK(spr_qkv_read_head(q, l, h, 0, again, again + nd, again + 2 * nd) == 0, "read back");
        FUZZ_CHECK(!memcmp(again, buf + 3 * nd * ((size_t)l * in.n_heads + h), 3 * nd * sizeof *again),
                   "layer %d head %d reads back different values", l, h);
      }
    free(again);
    spr_qkv_close(q);
    unlink(back);
  }
  free(buf);
  return 0;
}
