/* fuzz_model.c - the model reader (workloads/spr_model.c) through the
 * isolated HDF5 reader, and the evaluation of what it accepts.
 *
 * Built twice: fuzz_model_bytes takes the input as the file's bytes;
 * fuzz_model_struct (-DFUZZ_STRUCT) reads the input as a recipe: one of
 * the small synthetic models of tests/spr_test_model.h (image or causal
 * text, with or without one of its defects) is written, then changed
 * through the HDF5 API (root and eval attributes retyped: NULLPAD,
 * variable-length, integers of every width and sign, floats, arrays;
 * datasets deleted, retyped, reshaped, given a NaN, replaced by a group;
 * soft links in place of objects).
 *
 * Properties: this process never crashes; a refused file gives an error
 * naming it; an accepted model satisfies every check of docs/models.md
 * section 2 (verified here from the loaded arrays), its checksum is an
 * FNV-1a id, a second load gives the same model; and one evaluation item
 * (exact attention, SPRINT, dense and the baselines through the forward
 * pass) runs or is refused with an error code and a message. */
#include "config.h"
#include "fuzz_common.h"
#include "spr_config.h"
#include "spr_fmnist.h"
#include "spr_model.h"
#include "spr_model_eval.h"

#ifdef FUZZ_STRUCT
#include "../spr_test_model.h"

static const char *const OBJS[] = {"pos", "tok_emb", "embed_w", "cls", "layer_0/qkv_w",
                                   "layer_1/fc1_b", "layer_0", "theta", "eval", "eval/tokens",
                                   "eval/labels", "eval/pred_exact", "eval/nats_exact",
                                   "vocab_bytes", "head_w", "ln_b"};
enum { N_OBJS = sizeof OBJS / sizeof OBJS[0] };
static const char *const ATTRS[] = {"format", "version", "input", "causal", "dim", "depth",
                                    "heads", "mlp", "tokens", "ln_eps", "reference", "vocab",
                                    "side", "patch", "classes", "norm_mean", "norm_std",
                                    "top1_exact", "bpc_exact"};
enum { N_ATTRS = sizeof ATTRS / sizeof ATTRS[0] };
static const char *const STRS[] = {"sprintsim-model", "image", "text", "", "x",
                                   "sprintsim-model-eval", "none"};

/* An integer: small, at a type's edge, or beyond int. */
static long long pick_int(recipe *r) {
  switch (pick(r, 10)) {
  case 0: return 0;
  case 1: return -1;
  case 2: return 2147483647LL;
  case 3: return 2147483648LL;
  case 4: return -2147483649LL;
  case 5: return 1LL << 40;
  case 6: return 255;
  default: return (long long)pick(r, 300) - 20;
  }
}

/* Integer types of every width and sign, in both byte orders. */
static hid_t int_type(unsigned k) {
  switch (k) {
  case 0: return H5T_STD_I8LE;
  case 1: return H5T_STD_U8LE;
  case 2: return H5T_STD_I16BE;
  case 3: return H5T_STD_I32LE;
  case 4: return H5T_STD_U32LE;
  case 5: return H5T_STD_I64BE;
  default: return H5T_STD_U64LE;
  }
}

/* Replace attribute `an` of object o. */
static void retype_attr(hid_t o, const char *an, recipe *r) {
  if (H5Aexists(o, an) > 0) H5Adelete(o, an);
  const unsigned what = pick(r, 6);
  if (what == 5) return; /* deleted */
  hsize_t two = 2;
  hid_t sp = what == 4 ? H5Screate_simple(1, &two, NULL) : H5Screate(H5S_SCALAR), ty;
  if (what == 0) {
    ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, 1 + pick(r, 24));
    H5Tset_strpad(ty, pick(r, 2) ? H5T_STR_NULLPAD : H5T_STR_SPACEPAD);
  } else if (what == 1) {
    ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, H5T_VARIABLE);
    H5Tset_cset(ty, H5T_CSET_UTF8);
  } else if (what == 2) {
    ty = H5Tcopy(int_type(pick(r, 7)));
  } else {
    ty = H5Tcopy(pick(r, 2) ? H5T_IEEE_F64BE : H5T_IEEE_F32LE);
  }
  hid_t a = H5Acreate2(o, an, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    char buf[32] = "";
    snprintf(buf, sizeof buf, "%s", STRS[pick(r, 7)]);
    long long iv[2] = {pick_int(r), pick_int(r)};
    double dv[2] = {pick_double(r), pick_double(r)};
    if (what == 0) {
      H5Awrite(a, ty, buf);
    } else if (what == 1) {
      const char *p = buf;
      H5Awrite(a, ty, &p);
    } else if (what == 2 || (what == 4 && pick(r, 2))) {
      H5Awrite(a, H5T_NATIVE_LLONG, iv);
    } else {
      H5Awrite(a, H5T_NATIVE_DOUBLE, dv);
    }
    H5Aclose(a);
  }
  H5Tclose(ty);
  H5Sclose(sp);
}

/* Replace dataset `name` by one of another type or shape (or a NaN in
 * it), keeping its values where it can. */
static void retype_dset(hid_t f, const char *name, recipe *r) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return;
  hid_t sp = H5Dget_space(d);
  hsize_t dims[4] = {0, 0, 0, 0};
  int rank = H5Sget_simple_extent_ndims(sp);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (rank < 0 || rank > 4 || np <= 0 || np > 100000) {
    H5Sclose(sp);
    H5Dclose(d);
    return;
  }
  H5Sget_simple_extent_dims(sp, dims, NULL);
  double *v = calloc((size_t)np + 8, sizeof *v);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Sclose(sp);
  H5Dclose(d);
  const unsigned what = pick(r, 5);
  const unsigned tk = pick(r, 6);
  hid_t ty = H5Tcopy(tk == 0 ? H5T_STD_I32LE : tk == 1 ? H5T_IEEE_F64BE : tk == 2 ? H5T_STD_U8LE
                     : tk == 3 ? H5T_IEEE_F32LE : tk == 4 ? H5T_STD_I64LE : H5T_STD_I8LE);
  if (what == 0 && rank >= 1) { /* one size off by one */
    const int k = (int)pick(r, (unsigned)rank);
    dims[k] = pick(r, 2) && dims[k] > 1 ? dims[k] - 1 : dims[k] + 1;
  } else if (what == 1) { /* another rank */
    if (rank == 2) {
      dims[0] *= dims[1];
      rank = 1;
    } else if (rank == 1) {
      dims[1] = 1;
      rank = 2;
    }
  } else if (what == 2) { /* a NaN or a huge value */
    v[pick(r, (unsigned)np)] = pick_double(r);
  } else if (what == 3) { /* an integer beyond int, a negative one */
    v[pick(r, (unsigned)np)] = (double)pick_int(r);
  }
  hsize_t n = 1;
  for (int k = 0; k < rank; k++) n *= dims[k];
  if (n > (hsize_t)np) {
    double *w = realloc(v, n * sizeof *v);
    if (!w) {
      free(v);
      H5Tclose(ty);
      return;
    }
    v = w;
    for (hsize_t k = (hsize_t)np; k < n; k++) v[k] = 0.25;
  }
  H5Ldelete(f, name, H5P_DEFAULT);
  hid_t s2 = H5Screate_simple(rank, dims, NULL);
  hid_t d2 = H5Dcreate2(f, name, ty, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (d2 >= 0) {
    H5Dwrite(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d2);
  }
  H5Sclose(s2);
  H5Tclose(ty);
  free(v);
}

static void mutate(hid_t f, recipe *r) {
  const unsigned nm = pick(r, 5);
  for (unsigned m = 0; m < nm; m++) {
    const unsigned what = pick(r, 6);
    const char *obj = OBJS[pick(r, N_OBJS)];
    if (what <= 1) { /* a root attribute (or one of /eval) */
      hid_t o = H5Oopen(f, what == 0 ? "/" : "eval", H5P_DEFAULT);
      if (o >= 0) {
        retype_attr(o, ATTRS[pick(r, N_ATTRS)], r);
        H5Oclose(o);
      }
    } else if (what == 2) { /* deleted */
      H5Ldelete(f, obj, H5P_DEFAULT);
    } else if (what == 3) { /* retyped or reshaped */
      retype_dset(f, obj, r);
    } else if (what == 4) { /* a soft link in its place, to another object */
      H5Ldelete(f, obj, H5P_DEFAULT);
      H5Lcreate_soft(OBJS[pick(r, N_OBJS)], f, obj, H5P_DEFAULT, H5P_DEFAULT);
    } else { /* a group in its place */
      H5Ldelete(f, obj, H5P_DEFAULT);
      hid_t g = H5Gcreate2(f, obj, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g >= 0) H5Gclose(g);
    }
  }
}

static int build(const char *path, recipe *r) {
  const int text = (int)pick(r, 2);
  const int defect = pick(r, 3) ? OK : (int)pick(r, NATS_SHAPE + 1);
  write_model(path, text, defect, 2385 + pick(r, 256));
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return -1;
  mutate(f, r);
  H5Fclose(f);
  return 0;
}
#endif

static int finite_all(const float *v, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (!isfinite(v[k])) return 0;
  return 1;
}

/* docs/models.md section 2, checked on what the reader accepted. */
static void check_model(const spr_model *m) {
  FUZZ_CHECK(m->input == SPR_MODEL_IMAGE || m->input == SPR_MODEL_TEXT, "input %d", m->input);
  FUZZ_CHECK(m->causal == (m->input == SPR_MODEL_TEXT), "causal %d for input %d", m->causal, m->input);
  FUZZ_CHECK(m->dim >= 1 && m->dim <= SPR_MODEL_MAX_DIM && m->depth >= 1 && m->depth <= SPR_MAX_LAYERS &&
                 m->heads >= 1 && m->heads <= SPR_MAX_HEADS && m->dim % m->heads == 0 &&
                 m->head_dim * m->heads == m->dim && m->mlp >= 1 && m->mlp <= SPR_MODEL_MAX_MLP &&
                 m->tokens >= 2 && m->tokens <= SPR_QKV_MAX_SEQ && m->ln_eps > 0,
             "shape dim %d depth %d heads %d mlp %d tokens %d ln_eps %g", m->dim, m->depth, m->heads,
             m->mlp, m->tokens, m->ln_eps);
  const size_t D = (size_t)m->dim, T = (size_t)m->tokens, M = (size_t)m->mlp, O = (size_t)m->outputs;
  if (m->input == SPR_MODEL_IMAGE) {
    FUZZ_CHECK(m->side >= 1 && m->patch >= 1 && m->side % m->patch == 0 &&
                   (size_t)(m->side / m->patch) * (size_t)(m->side / m->patch) + 1 == T,
               "image side %d patch %d tokens %d", m->side, m->patch, m->tokens);
    FUZZ_CHECK(O >= 2 && O <= 256 && m->norm_std > 0 && isfinite(m->norm_mean), "classes, norm");
    FUZZ_CHECK(finite_all(m->embed_w, D * (size_t)m->patch * m->patch) && finite_all(m->embed_b, D) &&
                   finite_all(m->cls, D),
               "embedding");
    for (int i = 0; i < m->n_eval; i++)
      FUZZ_CHECK(m->eval_labels[i] < O && m->eval_pred_exact[i] < O, "eval item %d", i);
  } else {
    FUZZ_CHECK(m->vocab >= 2 && m->vocab <= 256 && O == (size_t)m->vocab, "vocab %d", m->vocab);
    for (int a = 0; a < m->vocab; a++)
      for (int b = 0; b < a; b++) FUZZ_CHECK(m->vocab_bytes[a] != m->vocab_bytes[b], "vocab bytes");
    FUZZ_CHECK(finite_all(m->tok_emb, (size_t)m->vocab * D), "tok_emb");
    for (int i = 0; i < m->n_eval; i++) FUZZ_CHECK(m->eval_tokens[i] < m->vocab, "eval token %d", i);
    for (int w = 0; w < m->eval_windows; w++) FUZZ_CHECK(isfinite(m->eval_nats_exact[w]), "nats %d", w);
  }
  FUZZ_CHECK(finite_all(m->pos, T * D), "pos");
  for (int l = 0; l < m->depth; l++) {
    const spr_model_layer *y = &m->layer[l];
    FUZZ_CHECK(finite_all(y->ln1_w, D) && finite_all(y->ln1_b, D) && finite_all(y->qkv_w, 3 * D * D) &&
                   finite_all(y->qkv_b, 3 * D) && finite_all(y->proj_w, D * D) &&
                   finite_all(y->proj_b, D) && finite_all(y->ln2_w, D) && finite_all(y->ln2_b, D) &&
                   finite_all(y->fc1_w, M * D) && finite_all(y->fc1_b, M) &&
                   finite_all(y->fc2_w, D * M) && finite_all(y->fc2_b, D),
               "layer %d", l);
  }
  FUZZ_CHECK(finite_all(m->ln_w, D) && finite_all(m->ln_b, D) && finite_all(m->head_w, O * D) &&
                 finite_all(m->head_b, O),
             "head");
  for (int l = 0; m->has_theta && l < m->depth; l++) FUZZ_CHECK(isfinite(m->theta[l]), "theta %d", l);
  FUZZ_CHECK(!strncmp(m->content_id, "fnv1a64:", 8) && strlen(m->content_id) == 24 && m->file_bytes > 0,
             "content id '%s', %lld bytes", m->content_id, m->file_bytes);
}

/* One item of the evaluation: runs, or is refused with a code and a
 * message.  Models whose forward pass would take long are not run. */
static void evaluate(const spr_model *m, const char *path) {
  const double T = m->tokens, D = m->dim, M = m->mlp;
  if (m->depth * (T * T * D + 2 * T * D * M + 4 * T * D * D) > 4e7 || m->side > 256) return;
  spr_config c;
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_MODEL;
  snprintf(c.wl.model, sizeof c.wl.model, "%s", path);
  c.wl.images = 1;
  c.wl.windows = 1;
  if (spr_config_resolve(&c, "fuzz")) return;
  spr_fmnist data;
  memset(&data, 0, sizeof data);
  if (m->input == SPR_MODEL_IMAGE) {
    data.count = 1;
    data.rows = data.cols = m->side;
    data.pixels = malloc((size_t)m->side * m->side);
    data.labels = calloc(1, 1);
    if (!data.pixels || !data.labels) abort();
    for (int k = 0; k < m->side * m->side; k++) data.pixels[k] = (uint8_t)(k * 37);
  }
  spr_model_eval_result r;
  int rc = spr_model_eval_run(&c, m, path, NULL, "", m->input == SPR_MODEL_IMAGE ? &data : NULL, 1,
                              NULL, NULL, &r);
  if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "evaluation: %d %s\n", rc, rc ? spr_errmsg() : "ran");
  if (rc) {
    FUZZ_CHECK(rc >= -9 && rc < 0 && spr_errmsg()[0], "evaluation error code %d", rc);
  } else {
    FUZZ_CHECK(r.n_items == 1 && r.scheme[SPR_MEVAL_EXACT].ran && r.scheme[SPR_SCHEME_SPRINT].ran,
               "rows of one item");
    FUZZ_CHECK(r.scheme[SPR_MEVAL_EXACT].keep_rate == 1.0, "exact keeps %g",
               r.scheme[SPR_MEVAL_EXACT].keep_rate);
    for (int s = 0; s < SPR_MEVAL_N_SCHEMES; s++)
      FUZZ_CHECK(!r.scheme[s].ran || (r.scheme[s].keep_rate >= 0 && r.scheme[s].keep_rate <= 1),
                 "scheme %d keeps %g", s, r.scheme[s].keep_rate);
    FUZZ_CHECK(r.n_inputs == 1 && !strcmp(r.inputs[0].key, "workload.model") &&
                   !strcmp(r.inputs[0].content_id, m->content_id),
               "inputs recorded");
    spr_model_eval_result_free(&r);
  }
  spr_fmnist_free(&data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("model.h5");
  FUZZ_INPUT_FILE(path, data, size);
  /* the header alone first: a file it refuses, spr_model_load (which
   * reads the same header first) refuses too, so a hostile file costs
   * one pass */
  const int kind = spr_model_input_of(path);
  if (kind < 0) {
    fuzz_check_names(kind, path);
    return 0;
  }
  spr_model m, m2;
  int rc = spr_model_load(path, &m);
  if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "load: %d %s\n", rc, rc ? spr_errmsg() : "accepted");
  if (rc) {
    fuzz_check_names(rc, path);
    FUZZ_CHECK(m.pos == NULL && m.layer[0].qkv_w == NULL, "a refused model left arrays");
    return 0;
  }
  FUZZ_CHECK(kind == m.input, "spr_model_input_of says %d, the model %d", kind, m.input);
  check_model(&m);
  rc = spr_model_load(path, &m2);
  FUZZ_CHECK(rc == 0, "a second load refuses what the first accepted");
  FUZZ_CHECK(!strcmp(m.content_id, m2.content_id) && m.dim == m2.dim && m.n_eval == m2.n_eval &&
                 !memcmp(m.pos, m2.pos, (size_t)m.tokens * m.dim * sizeof *m.pos) &&
                 !memcmp(m.head_w, m2.head_w, (size_t)m.outputs * m.dim * sizeof *m.head_w),
             "a second load differs");
  spr_model_free(&m2);
  evaluate(&m, path);
  spr_model_free(&m);
  return 0;
}
