/* fuzz_device.c - the device-model reader (calibration/spr_device.c)
 * through the isolated HDF5 reader.
 *
 * Built twice: fuzz_device_bytes takes the input as the file's bytes;
 * fuzz_device_struct (-DFUZZ_STRUCT) reads the input as a recipe: a
 * device model is built through the library's API (parameters, keys,
 * units, intervals, provenance, data arrays), written, then changed
 * through the HDF5 API (attributes retyped, NULLPAD or variable-length
 * strings, values replaced by NaN, objects deleted, renamed or linked).
 *
 * Properties: this process never crashes; a refused file gives an error
 * naming it; an accepted model, written back with spr_device_write, reads
 * back equal (parameters, provenance, configuration text, data). */
#include "config.h"
#include "fuzz_common.h"
#include "spr_device.h"

#ifdef FUZZ_STRUCT
static const char *const KEYS[] = {"", "crossbar.cell_v0", "analog.cmp_offset_sigma", "analog.cmp_noise_sigma",
                                   "crossbar.ir_alpha_wl", "energy.imc_mac_per_op", "crossbar.rows", "nope.key"};
static const char *const UNITS[] = {"V", "A", "1", "J", "S", "", "uA"};

static void mutate(hid_t f, recipe *r) {
  static const char *const objs[] = {"/", "/params/p0", "/params/p1", "/provenance/created",
                                     "/provenance/config", "/data/d0", "/provenance/seeds/s0"};
  static const char *const attrs[] = {"format", "key", "unit", "model", "ci95_lo", "ci95_hi", "n_points",
                                      "description", "format_version", "r2"};
  const unsigned nm = pick(r, 4);
  for (unsigned m = 0; m < nm; m++) {
    const char *obj = objs[pick(r, 7)], *an = attrs[pick(r, 10)];
    const unsigned what = pick(r, 7);
    if (H5Lexists(f, obj, H5P_DEFAULT) <= 0 && strcmp(obj, "/")) continue;
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (o < 0) continue;
    if (what <= 3) { /* an attribute replaced: NULLPAD, vlen, an integer, an array */
      if (H5Aexists(o, an) > 0) H5Adelete(o, an);
      hsize_t two = 2;
      hid_t sp = what == 3 ? H5Screate_simple(1, &two, NULL) : H5Screate(H5S_SCALAR);
      hid_t ty;
      if (what == 0) {
        ty = H5Tcopy(H5T_C_S1);
        H5Tset_size(ty, 1 + pick(r, 30));
        H5Tset_strpad(ty, H5T_STR_NULLPAD);
      } else if (what == 1) {
        ty = H5Tcopy(H5T_C_S1);
        H5Tset_size(ty, H5T_VARIABLE);
        H5Tset_cset(ty, H5T_CSET_UTF8);
      } else {
        ty = H5Tcopy(pick(r, 2) ? H5T_STD_I32LE : H5T_IEEE_F64BE);
      }
      hid_t a = H5Acreate2(o, an, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
      if (a >= 0) {
        char buf[64] = "sprintsim device model";
        double dv[2] = {pick_double(r), pick_double(r)};
        if (what == 1) {
          const char *p = pick(r, 2) ? "crossbar.cell_v0" : buf;
          H5Awrite(a, ty, &p);
        } else if (what == 0) {
          H5Awrite(a, ty, buf);
        } else {
          H5Awrite(a, H5T_NATIVE_DOUBLE, dv);
        }
        H5Aclose(a);
      }
      H5Tclose(ty);
      H5Sclose(sp);
    } else if (what == 4) { /* deleted */
      if (strcmp(obj, "/")) H5Ldelete(f, obj, H5P_DEFAULT);
    } else if (what == 5) { /* a soft link in its place's group */
      H5Lcreate_soft(obj, f, pick(r, 2) ? "/params/alias" : "/data/alias", H5P_DEFAULT, H5P_DEFAULT);
    } else if (what == 6 && H5Iget_type(o) == H5I_DATASET) { /* value NaN (float datasets) */
      hid_t ty = H5Dget_type(o);
      if (H5Tget_class(ty) == H5T_FLOAT) {
        hid_t sp = H5Dget_space(o);
        hssize_t np = H5Sget_simple_extent_npoints(sp);
        if (np > 0 && np < 100000) {
          double *v = calloc((size_t)np, sizeof *v);
          v[pick(r, (unsigned)np)] = pick_double(r);
          H5Dwrite(o, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
          free(v);
        }
        H5Sclose(sp);
      }
      H5Tclose(ty);
    }
    H5Oclose(o);
  }
}

static int build(const char *path, recipe *r) {
  spr_device d;
  spr_device_init(&d);
  snprintf(d.ngspice_version, sizeof d.ngspice_version, "ngspice-39");
  snprintf(d.sprintsim_version, sizeof d.sprintsim_version, "0.1.0");
  const unsigned np = pick(r, 6);
  for (unsigned i = 0; i < np; i++) {
    spr_device_param p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "p%u", i);
    snprintf(p.key, sizeof p.key, "%s", KEYS[pick(r, 8)]);
    snprintf(p.unit, sizeof p.unit, "%s", UNITS[pick(r, 7)]);
    snprintf(p.model, sizeof p.model, "model %u", pick(r, 100));
    p.value = pick(r, 6) ? 1e-7 * (1 + pick(r, 1000)) : pick_double(r);
    p.ci95_lo = p.value * 0.9;
    p.ci95_hi = p.value * 1.1 + 1e-12;
    p.residual_rms = 1e-9;
    p.chi2_dof = 1;
    p.r2 = 0.99;
    p.n_points = 1 + pick(r, 50);
    spr_device_add(&d, &p); /* refusals are the builder's business */
  }
  if (pick(r, 2)) spr_device_add_netlist(&d, "n0", "* deck\nR1 a 0 1k\n.end\n");
  spr_device_add_seed(&d, "s0", pick(r, 1000));
  spr_device_add_samples(&d, "mc", 1 + pick(r, 1000));
  if (pick(r, 2)) spr_device_set_config(&d, pick(r, 2) ? "[run]\nseed = 7\n" : "[crossbar]\nrows = 8\n");
  const unsigned nd = pick(r, 3);
  for (unsigned i = 0; i < nd; i++) {
    char name[16];
    snprintf(name, sizeof name, "d%u", i);
    const int rank = 1 + (int)pick(r, 2);
    const int64_t n0 = 1 + pick(r, 6), n1 = rank == 2 ? 1 + pick(r, 4) : 1;
    double v[64];
    for (int k = 0; k < 64; k++) v[k] = 0.5 * k - 3;
    spr_device_add_data(&d, name, "A", "fuzzed data", rank, n0, n1, v);
  }
  int rc = spr_device_write(path, &d);
  spr_device_free(&d);
  if (rc) return rc;
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return -1;
  mutate(f, r);
  H5Fclose(f);
  return 0;
}
#endif

static void check_equal(const spr_device *a, const spr_device *b) {
  FUZZ_CHECK(a->n_params == b->n_params, "%d vs %d parameters", a->n_params, b->n_params);
  for (int i = 0; i < a->n_params; i++) {
    const spr_device_param *x = &a->params[i], *y = &b->params[i];
    FUZZ_CHECK(!strcmp(x->name, y->name) && !strcmp(x->key, y->key) && !strcmp(x->unit, y->unit) &&
                   !strcmp(x->model, y->model),
               "parameter %d's texts", i);
    FUZZ_CHECK(x->value == y->value && x->ci95_lo == y->ci95_lo && x->ci95_hi == y->ci95_hi &&
                   x->residual_rms == y->residual_rms && x->chi2_dof == y->chi2_dof && x->r2 == y->r2 &&
                   x->n_points == y->n_points,
               "parameter %s's numbers", x->name);
  }
  FUZZ_CHECK(a->n_netlists == b->n_netlists && a->n_seeds == b->n_seeds && a->n_samples == b->n_samples &&
                 a->n_data == b->n_data,
             "provenance counts");
  for (int i = 0; i < a->n_netlists; i++)
    FUZZ_CHECK(!strcmp(a->netlist_name[i], b->netlist_name[i]) && !strcmp(a->netlist_text[i], b->netlist_text[i]),
               "netlist %d", i);
  for (int i = 0; i < a->n_seeds; i++) FUZZ_CHECK(a->seeds[i].value == b->seeds[i].value, "seed %d", i);
  for (int i = 0; i < a->n_samples; i++) FUZZ_CHECK(a->samples[i].value == b->samples[i].value, "samples %d", i);
  FUZZ_CHECK((!a->config_text && !b->config_text) ||
                 (a->config_text && b->config_text && !strcmp(a->config_text, b->config_text)),
             "configuration text");
  FUZZ_CHECK(!strcmp(a->created, b->created) && !strcmp(a->ngspice_version, b->ngspice_version) &&
                 !strcmp(a->sprintsim_version, b->sprintsim_version),
             "provenance strings");
  for (int i = 0; i < a->n_data; i++) {
    const spr_device_data *x = &a->data[i], *y = &b->data[i];
    FUZZ_CHECK(x->rank == y->rank && x->dims[0] == y->dims[0] && x->dims[1] == y->dims[1] &&
                   !strcmp(x->unit, y->unit) && !strcmp(x->description, y->description),
               "data %s", x->name);
    FUZZ_CHECK(!memcmp(x->values, y->values, sizeof(double) * (size_t)(x->dims[0] * x->dims[1])),
               "data %s values", x->name);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("dev.h5"), *back = fuzz_path("dev-back.h5");
  FUZZ_INPUT_FILE(path, data, size);
  spr_device d, e;
  int rc = spr_device_read(path, &d);
  if (rc) {
    fuzz_check_names(rc, path);
    spr_device_free(&d);
    return 0;
  }
  FUZZ_CHECK(!strncmp(d.content_id, "fnv1a64:", 8), "content id '%s'", d.content_id);
  rc = spr_device_write(back, &d);
  FUZZ_CHECK(rc == 0, "the writer refuses what the reader accepted");
  rc = spr_device_read(back, &e);
  FUZZ_CHECK(rc == 0, "the written model does not read back");
  check_equal(&d, &e);
  spr_device_free(&d);
  spr_device_free(&e);
  unlink(back);
  return 0;
}
