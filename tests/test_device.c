/* test_device.c - device-model files (calibration/spr_device.c): a model
 * built from real fits round-trips through HDF5 field by field; applying
 * it sets exactly its keys; crafted bad files (missing dataset or
 * attribute, wrong type, NaN, unknown key, wrong format) are rejected with
 * messages naming them; strings written by other tools (variable length,
 * as h5py writes them) are read. */
#include "config.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_h5r.h"
#include "spr_error.h"
#include "spr_fit.h"
#include "spr_rng.h"
#include "spr_test.h"
#include "spr_test_device.h"

#include <gsl/gsl_randist.h>
#include <hdf5.h>
#include <math.h>

/* A device model from fits of seeded synthetic data: cell V0, the IR
 * scales (given directly), comparator offset sigma and mean, energies. */
static void build(spr_device *d) {
  spr_device_init(d);
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 2385, 0, 0, 0, 5);
  double V[31], I[31];
  for (int i = 0; i < 31; i++) {
    V[i] = -0.3 + 0.02 * i;
    I[i] = 5e-5 * 0.25 * sinh(V[i] / 0.25) + gsl_ran_gaussian(r, 1e-8);
  }
  spr_fit_result f;
  CU_ASSERT_EQUAL_FATAL(spr_fit_cell_iv(V, I, 31, 0, &f), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_fit(d, "cell_v0", "crossbar.cell_v0", "V",
                                           "I = G V0 sinh(V/V0)", &f, 1), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_fit(d, "cell_g", "", "S", "I = G V0 sinh(V/V0)", &f, 0), 0);
  double trip[200];
  for (int i = 0; i < 200; i++) trip[i] = 1e-6 + 3e-9 + gsl_ran_gaussian(r, 1.7e-8);
  spr_fit_gauss g;
  CU_ASSERT_EQUAL_FATAL(spr_fit_cmp_offset(trip, 200, 1e-6, &g), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_gauss(d, "cmp_offset_sigma", "analog.cmp_offset_sigma", "A",
                                             "trip - nominal ~ N(mu, sigma)", &g, 1), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_gauss(d, "cmp_offset_mean", "", "A",
                                             "trip - nominal ~ N(mu, sigma)", &g, 0), 0);
  spr_device_param p;
  spr_test_ir_alpha_param(&p);
  CU_ASSERT_EQUAL_FATAL(spr_device_add(d, &p), 0);
  snprintf(p.name, sizeof p.name, "imc_mac");
  snprintf(p.key, sizeof p.key, "energy.imc_mac_per_op");
  snprintf(p.unit, sizeof p.unit, "J");
  p.value = 0.0875e-12;
  p.ci95_lo = 0.085e-12;
  p.ci95_hi = 0.09e-12;
  CU_ASSERT_EQUAL_FATAL(spr_device_add(d, &p), 0);
  /* comparator noise: a white + 1/f density integrated over the band */
  double fr[20], S[20], sig, sci;
  for (int i = 0; i < 20; i++) {
    fr[i] = 1e3 * pow(10, 5.0 * i / 19);
    S[i] = (1e-24 + 2e-18 / fr[i]) * (1 + gsl_ran_gaussian(r, 0.02));
  }
  spr_fit_result nf;
  CU_ASSERT_EQUAL_FATAL(spr_fit_noise_psd(fr, S, 20, 1e3, 1e8, &nf, &sig, &sci), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_value(d, "cmp_noise_sigma", "analog.cmp_noise_sigma", "A",
                                             "S = S_w + K_f / f over [1 kHz, 100 MHz]", sig,
                                             sig - sci, sig + sci, &nf), 0);
  CU_ASSERT_EQUAL(d->params[d->n_params - 1].n_points, 20);
  CU_ASSERT_EQUAL(d->params[d->n_params - 1].r2, nf.r2);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_netlist(d, "cell_iv", "* cell\nR1 a 0 10k\n.end\n"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_netlist(d, "comparator", "* latch\nM1 d g s b nmos\n.end\n"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_seed(d, "monte_carlo", 18446744073709551557ULL), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_add_samples(d, "comparator_mc", 200), 0);
  /* raw data: the trips of the offset fit, a 2-D array, the configuration */
  CU_ASSERT_EQUAL_FATAL(spr_device_add_data(d, "trip", "A", "trip currents", 1, 200, 0, trip), 0);
  double iv[31 * 2];
  for (int i = 0; i < 31; i++) {
    iv[2 * i] = V[i];
    iv[2 * i + 1] = I[i];
  }
  CU_ASSERT_EQUAL_FATAL(spr_device_add_data(d, "iv", "1", "rows (V in V, I in A)", 2, 31, 2, iv), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_set_config(d, "[run]\nseed = 2385\n"), 0);
  snprintf(d->ngspice_version, sizeof d->ngspice_version, "ngspice-39 (test)");
  snprintf(d->sprintsim_version, sizeof d->sprintsim_version, "%s", PACKAGE_VERSION);
  gsl_rng_free(r);
}

static void test_round_trip(void) {
  char path[256];
  spr_test_path(path, sizeof path, "dev", ".h5");
  spr_device d, e;
  build(&d);
  CU_ASSERT_EQUAL_FATAL(spr_device_write(path, &d), 0);
  CU_ASSERT_EQUAL(strlen(d.created), 20); /* "YYYY-MM-DDTHH:MM:SSZ" */
  CU_ASSERT_EQUAL_FATAL(spr_device_read(path, &e), 0);
  CU_ASSERT_EQUAL(e.n_params, d.n_params);
  for (int i = 0; i < d.n_params && i < e.n_params; i++) {
    /* the file lists parameters by name: find it */
    const spr_device_param *a = &d.params[i], *b = NULL;
    for (int j = 0; j < e.n_params; j++)
      if (!strcmp(e.params[j].name, a->name)) b = &e.params[j];
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(a->key, b->key);
    CU_ASSERT_STRING_EQUAL(a->unit, b->unit);
    CU_ASSERT_STRING_EQUAL(a->model, b->model);
    CU_ASSERT(a->value == b->value && a->ci95_lo == b->ci95_lo && a->ci95_hi == b->ci95_hi);
    CU_ASSERT(a->residual_rms == b->residual_rms && a->chi2_dof == b->chi2_dof && a->r2 == b->r2);
    CU_ASSERT_EQUAL(a->n_points, b->n_points);
  }
  CU_ASSERT_EQUAL(e.n_netlists, 2);
  for (int i = 0; i < 2; i++) {
    int j = strcmp(e.netlist_name[0], d.netlist_name[i]) ? 1 : 0;
    CU_ASSERT_STRING_EQUAL(e.netlist_name[j], d.netlist_name[i]);
    CU_ASSERT_STRING_EQUAL(e.netlist_text[j], d.netlist_text[i]);
  }
  CU_ASSERT_EQUAL(e.n_seeds, 1);
  CU_ASSERT_EQUAL(e.seeds[0].value, 18446744073709551557ULL);
  CU_ASSERT_STRING_EQUAL(e.seeds[0].name, "monte_carlo");
  CU_ASSERT_EQUAL(e.n_samples, 1);
  CU_ASSERT_EQUAL(e.samples[0].value, 200);
  CU_ASSERT_STRING_EQUAL(e.ngspice_version, d.ngspice_version);
  CU_ASSERT_STRING_EQUAL(e.sprintsim_version, PACKAGE_VERSION);
  CU_ASSERT_STRING_EQUAL(e.created, d.created);
  CU_ASSERT_EQUAL(strncmp(e.content_id, "fnv1a64:", 8), 0);
  CU_ASSERT_EQUAL(strlen(e.content_id), 8 + 16);
  CU_ASSERT_EQUAL(e.n_data, 2);
  const spr_device_data *ta = spr_device_find_data(&d, "trip"), *tb = spr_device_find_data(&e, "trip");
  const spr_device_data *ia = spr_device_find_data(&d, "iv"), *ib = spr_device_find_data(&e, "iv");
  CU_ASSERT_FATAL(ta && tb && ia && ib);
  CU_ASSERT(tb->rank == 1 && tb->dims[0] == 200 && tb->dims[1] == 1);
  CU_ASSERT(memcmp(ta->values, tb->values, 200 * sizeof(double)) == 0);
  CU_ASSERT(ib->rank == 2 && ib->dims[0] == 31 && ib->dims[1] == 2);
  CU_ASSERT(memcmp(ia->values, ib->values, 62 * sizeof(double)) == 0);
  CU_ASSERT_STRING_EQUAL(ib->unit, "1");
  CU_ASSERT_STRING_EQUAL(ib->description, "rows (V in V, I in A)");
  CU_ASSERT_PTR_NULL(spr_device_find_data(&e, "none"));
  CU_ASSERT(e.config_text && !strcmp(e.config_text, "[run]\nseed = 2385\n"));
  /* the identity follows the content: the same file the same, another not */
  spr_device e2;
  CU_ASSERT_EQUAL_FATAL(spr_device_read(path, &e2), 0);
  CU_ASSERT_STRING_EQUAL(e2.content_id, e.content_id);
  spr_device_free(&e2);
  d.params[0].value *= 1.001;
  d.params[0].ci95_hi *= 1.01;
  CU_ASSERT_EQUAL_FATAL(spr_device_write(path, &d), 0);
  CU_ASSERT_EQUAL_FATAL(spr_device_read(path, &e2), 0);
  CU_ASSERT_STRING_NOT_EQUAL(e2.content_id, e.content_id);
  spr_device_free(&e2);
  spr_device_free(&d);
  spr_device_free(&e);
  spr_device_free(NULL);
  unlink(path);
}

static void test_apply(void) {
  spr_device d;
  build(&d);
  spr_config c, c0;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  c0 = c;
  int idx[SPR_DEVICE_MAX_PARAMS], n = -1;
  CU_ASSERT_EQUAL_FATAL(spr_device_apply(&d, &c, "dev.h5", idx, &n), 0);
  CU_ASSERT_EQUAL(n, 5); /* cell_g and cmp_offset_mean are informational */
  CU_ASSERT_STRING_EQUAL(d.params[idx[0]].key, "crossbar.cell_v0");
  CU_ASSERT_STRING_EQUAL(d.params[idx[3]].key, "energy.imc_mac_per_op");
  CU_ASSERT_STRING_EQUAL(d.params[idx[4]].key, "analog.cmp_noise_sigma");
  CU_ASSERT_EQUAL(c.xbar.cell_v0_V, d.params[0].value);
  CU_ASSERT_EQUAL(c.an.cmp_offset_sigma_A, d.params[2].value);
  CU_ASSERT_EQUAL(c.xbar.ir_alpha_wl, 0.9385);
  CU_ASSERT_EQUAL(c.energy.imc_mac_J, 0.0875e-12);
  CU_ASSERT_EQUAL(c.an.cmp_noise_sigma_A, d.params[idx[4]].value);
  /* nothing else moved */
  c.an.cmp_noise_sigma_A = c0.an.cmp_noise_sigma_A;
  c.xbar.cell_v0_V = c0.xbar.cell_v0_V;
  c.an.cmp_offset_sigma_A = c0.an.cmp_offset_sigma_A;
  c.xbar.ir_alpha_wl = c0.xbar.ir_alpha_wl;
  c.energy.imc_mac_J = c0.energy.imc_mac_J;
  CU_ASSERT_EQUAL(memcmp(&c, &c0, sizeof c), 0);
  /* a value outside the key's range is a configuration error naming it */
  d.params[2].value = 2.5;
  d.params[2].ci95_hi = 3;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_device_apply(&d, &c, "dev.h5", NULL, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dev.h5: /params/cmp_offset_sigma: key 'analog.cmp_offset_sigma': value '2.5' out of range");
  spr_device_free(&d);
}

static void test_add_errors(void) {
  spr_device d;
  build(&d);
  spr_device_param p = d.params[0];
  snprintf(p.name, sizeof p.name, "other");
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), SPR_EINVAL); /* same key as cell_v0 */
  SPR_ASSERT_CONTAINS(spr_errmsg(), "key 'crossbar.cell_v0' is also set by 'cell_v0'");
  p.key[0] = '\0';
  p.value = NAN;
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "parameter 'other': value is nan");
  p.value = 5;
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "value 5 is outside its 95% interval");
  p.value = d.params[0].value;
  snprintf(p.key, sizeof p.key, "crossbar.rows"); /* an integer key */
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "key 'crossbar.rows' is not a floating-point configuration key");
  snprintf(p.key, sizeof p.key, "analog.v_read");
  snprintf(p.unit, sizeof p.unit, "A");
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "unit 'A' does not match key 'analog.v_read' (unit 'V')");
  snprintf(p.name, sizeof p.name, "bad/name");
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'bad/name'");
  double x[4] = {1, 2, NAN, 4};
  CU_ASSERT_EQUAL(spr_device_add_data(&d, "x", "A", "x", 1, 4, 0, x), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "data 'x': value 2 is nan");
  x[2] = 3;
  CU_ASSERT_EQUAL(spr_device_add_data(&d, "x", "A", "x", 3, 4, 1, x), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "data 'x': rank 3 (1 or 2)");
  CU_ASSERT_EQUAL(spr_device_add_data(&d, "x", "A", "x", 2, 2, 0, x), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "data 'x': shape 2 x 0");
  CU_ASSERT_EQUAL(spr_device_add_data(&d, "x", "", "x", 1, 4, 0, x), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "data 'x': unit or description is empty");
  CU_ASSERT_EQUAL(spr_device_add_data(&d, "trip", "A", "again", 1, 4, 0, x), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "data 'trip': name given twice");
  CU_ASSERT_EQUAL(spr_device_add_data(&d, "a/b", "A", "x", 1, 4, 0, x), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "data name 'a/b'");
  CU_ASSERT_EQUAL(spr_device_set_config(&d, ""), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_device_add_seed(&d, "monte_carlo", 3), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "seed 'monte_carlo' given twice");
  /* writing needs the provenance */
  char path[256];
  spr_test_path(path, sizeof path, "devw", ".h5");
  d.ngspice_version[0] = '\0';
  CU_ASSERT_EQUAL(spr_device_write(path, &d), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "provenance 'ngspice_version' is empty");
  CU_ASSERT_EQUAL(access(path, F_OK), -1);
  spr_device_free(&d);
}

/* --- crafted bad files -------------------------------------------------------- */

typedef void (*mutator)(hid_t f);

/* Write the good model to path, apply m to the file, read it back. */
static int read_mutated(const char *path, mutator m) {
  spr_device d;
  build(&d);
  CU_ASSERT_EQUAL_FATAL(spr_device_write(path, &d), 0);
  spr_device_free(&d);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  m(f);
  H5Fclose(f);
  spr_device e;
  int rc = spr_device_read(path, &e);
  spr_device_free(&e);
  return rc;
}

static void del_ngspice(hid_t f) { H5Ldelete(f, "/provenance/ngspice_version", H5P_DEFAULT); }

static void int_value(hid_t f) {
  H5Ldelete(f, "/params/cell_v0", H5P_DEFAULT);
  hid_t sp = H5Screate(H5S_SCALAR);
  int32_t v = 3;
  hid_t ds = H5Dcreate2(f, "/params/cell_v0", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void nan_value(hid_t f) {
  hid_t ds = H5Dopen2(f, "/params/cell_v0", H5P_DEFAULT);
  double v = NAN;
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
  H5Dclose(ds);
}

/* replace a string attribute by a variable-length UTF-8 one, as h5py
 * writes */
static void vlen_attr(hid_t f, const char *obj, const char *name, const char *val) {
  hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
  H5Adelete(o, name);
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, H5T_VARIABLE);
  H5Tset_cset(ty, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(o, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, ty, &val);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
  H5Oclose(o);
}

static void unknown_key(hid_t f) { vlen_attr(f, "/params/ir_alpha_wl", "key", "crossbar.ir_alpha_wordline"); }
static void vlen_ok(hid_t f) { vlen_attr(f, "/params/ir_alpha_wl", "model", "written by h5py"); }

static void del_ci(hid_t f) {
  hid_t o = H5Oopen(f, "/params/imc_mac", H5P_DEFAULT);
  H5Adelete(o, "ci95_hi");
  H5Oclose(o);
}

static void bad_format(hid_t f) { vlen_attr(f, "/", "format", "sprintsim trace"); }

static void del_params(hid_t f) { H5Ldelete(f, "/params", H5P_DEFAULT); }

static void data_int(hid_t f) {
  H5Ldelete(f, "/data/trip", H5P_DEFAULT);
  hsize_t n = 3;
  int32_t v[3] = {1, 2, 3};
  hid_t sp = H5Screate_simple(1, &n, NULL);
  hid_t ds = H5Dcreate2(f, "/data/trip", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void data_rank3(hid_t f) {
  H5Ldelete(f, "/data/iv", H5P_DEFAULT);
  hsize_t n[3] = {2, 2, 2};
  double v[8] = {0};
  hid_t sp = H5Screate_simple(3, n, NULL);
  hid_t ds = H5Dcreate2(f, "/data/iv", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void data_inf(hid_t f) {
  hid_t ds = H5Dopen2(f, "/data/iv", H5P_DEFAULT);
  double v[62] = {0};
  v[61] = INFINITY;
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(ds);
}

static void data_no_desc(hid_t f) {
  hid_t o = H5Oopen(f, "/data/iv", H5P_DEFAULT);
  H5Adelete(o, "description");
  H5Oclose(o);
}

static void data_none(hid_t f) {
  H5Ldelete(f, "/data", H5P_DEFAULT);
  H5Ldelete(f, "/provenance/config", H5P_DEFAULT);
}

static void test_bad_files(void) {
  char path[256];
  spr_test_path(path, sizeof path, "devbad", ".h5");
  H5E_auto2_t fn;
  void *data;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the mutators' own calls stay quiet */
  CU_ASSERT_EQUAL(read_mutated(path, del_ngspice), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/provenance/ngspice_version' is missing");
  SPR_ASSERT_CONTAINS(spr_errmsg(), path);
  CU_ASSERT_EQUAL(read_mutated(path, int_value), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/params/cell_v0' is not a floating-point number");
  CU_ASSERT_EQUAL(read_mutated(path, nan_value), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/params/cell_v0': value is nan");
  CU_ASSERT_EQUAL(read_mutated(path, unknown_key), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'/params/ir_alpha_wl': key 'crossbar.ir_alpha_wordline' is not a floating-point configuration key");
  CU_ASSERT_EQUAL(read_mutated(path, del_ci), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "attribute 'ci95_hi' of '/params/imc_mac' is missing");
  CU_ASSERT_EQUAL(read_mutated(path, bad_format), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'format' of '/' is 'sprintsim trace', expected 'sprintsim device model'");
  CU_ASSERT_EQUAL(read_mutated(path, del_params), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "group '/params' is missing");
  CU_ASSERT_EQUAL(read_mutated(path, data_int), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/data/trip' is not float64");
  CU_ASSERT_EQUAL(read_mutated(path, data_rank3), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/data/iv' has rank 3 (1 or 2)");
  CU_ASSERT_EQUAL(read_mutated(path, data_inf), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/data/iv': value 61 is inf");
  CU_ASSERT_EQUAL(read_mutated(path, data_no_desc), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "attribute 'description' of '/data/iv' is missing");
  /* files without raw data or configuration (older writers) are read */
  CU_ASSERT_EQUAL(read_mutated(path, data_none), 0);
  /* a variable-length string (h5py's default) is fine */
  CU_ASSERT_EQUAL(read_mutated(path, vlen_ok), 0);
  H5Eset_auto2(H5E_DEFAULT, fn, data);
  /* not HDF5, missing */
  FILE *t = fopen(path, "w");
  fputs("[run]\nseed = 1\n", t);
  fclose(t);
  spr_device e;
  CU_ASSERT_EQUAL(spr_device_read(path, &e), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not an HDF5 file");
  unlink(path);
  CU_ASSERT_EQUAL(spr_device_read(path, &e), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot open device model");
  spr_device_free(&e);
}

/* replace a string attribute by a fixed-length NULLPAD one that fills its
 * size (no terminator), as h5py writes np.bytes_ */
static void nullpad_attr(hid_t f, const char *obj, const char *name, const char *val) {
  hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
  H5Adelete(o, name);
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, strlen(val));
  H5Tset_strpad(ty, H5T_STR_NULLPAD);
  hid_t a = H5Acreate2(o, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, ty, val);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
  H5Oclose(o);
}

static void nullpad_ok(hid_t f) {
  nullpad_attr(f, "/", "format", SPR_DEVICE_FORMAT);
  nullpad_attr(f, "/params/cell_v0", "unit", "V");
  nullpad_attr(f, "/params/cell_v0", "key", "crossbar.cell_v0");
}

/* FNV-1a 64 of a file, directly */
static uint64_t fnv_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint64_t x = UINT64_C(14695981039346656037);
  for (int c; (c = fgetc(f)) != EOF;) {
    x ^= (unsigned char)c;
    x *= UINT64_C(1099511628211);
  }
  fclose(f);
  return x;
}

/* h5py's NULLPAD strings are read whole (they were one byte short); the
 * content id is the FNV-1a of the bytes */
static void test_nullpad_and_id(void) {
  char path[256], want[32];
  spr_test_path(path, sizeof path, "devpad", ".h5");
  H5E_auto2_t fn;
  void *data;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  CU_ASSERT_EQUAL(read_mutated(path, nullpad_ok), 0);
  H5Eset_auto2(H5E_DEFAULT, fn, data);
  spr_device e;
  CU_ASSERT_EQUAL_FATAL(spr_device_read(path, &e), 0);
  int found = 0;
  for (int i = 0; i < e.n_params; i++)
    if (!strcmp(e.params[i].name, "cell_v0")) {
      found = 1;
      CU_ASSERT_STRING_EQUAL(e.params[i].unit, "V");
      CU_ASSERT_STRING_EQUAL(e.params[i].key, "crossbar.cell_v0");
    }
  CU_ASSERT(found);
  snprintf(want, sizeof want, "fnv1a64:%016llx", (unsigned long long)fnv_file(path));
  CU_ASSERT_STRING_EQUAL(e.content_id, want);
  spr_device_free(&e);
  unlink(path);
}

static int read_device(const char *path, void *arg) {
  spr_device e;
  int rc = spr_device_read(path, &e);
  spr_device_free(&e);
  return rc;
}

/* T6 to T8 were found on this reader: an invalid free, a loop and a use
 * after free in libhdf5 */
static void test_hostile(void) { CU_ASSERT_EQUAL(spr_test_crashers(read_device, NULL), 13); }

static int write_built(const char *path, void *arg) {
  spr_device d;
  build(&d);
  int rc = spr_device_write(path, &d);
  spr_device_free(&d);
  return rc;
}

/* calibrate on a nearly full disk: an error naming the file, no file, and
 * no crash of libhdf5 at exit (F5) */
static void test_full_disk(void) {
  char path[256];
  spr_test_path(path, sizeof path, "devfull", ".h5");
  CU_ASSERT_EQUAL_FATAL(write_built(path, NULL), 0);
  struct stat st;
  stat(path, &st);
  unlink(path);
  CU_ASSERT(spr_test_full_disk_levels(write_built, NULL, path, st.st_size) >= 7);
}

/* "test_device --write FILE": write the model of build() plus the read-noise
 * factor, for tests/test_cli.sh (a run with a device model). */
static const char *write_path;

static void test_write_file(void) {
  spr_device d;
  build(&d);
  spr_device_param p = d.params[0];
  snprintf(p.name, sizeof p.name, "thermal_excess");
  snprintf(p.key, sizeof p.key, "analog.thermal_excess");
  snprintf(p.unit, sizeof p.unit, "1");
  snprintf(p.model, sizeof p.model, "var - shot = F 4kTB sum G");
  p.value = 1.385;
  p.ci95_lo = 1.30;
  p.ci95_hi = 1.47;
  CU_ASSERT_EQUAL(spr_device_add(&d, &p), 0);
  int rc = spr_device_write(write_path, &d);
  if (rc) fprintf(stderr, "test_device: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL(rc, 0);
  spr_device_free(&d);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write")) {
    write_path = argv[2];
    CU_TestInfo w[] = {{"write a device model", test_write_file}, CU_TEST_INFO_NULL};
    return spr_test_run("device-write", w);
  }
  CU_TestInfo tests[] = {{"round trip of a model built from fits", test_round_trip},
                         {"apply sets exactly the keyed parameters", test_apply},
                         {"validation when building", test_add_errors},
                         {"crafted bad files are rejected by name", test_bad_files},
                         {"NULLPAD string attributes, content id", test_nullpad_and_id},
                         {"hostile files (hdf5-crashers)", test_hostile},
                         {"writer on a full disk", test_full_disk},
                         CU_TEST_INFO_NULL};
  /* 1 s of CPU per request of the reader's child: the crafted files that
   * loop libhdf5 end quickly */
  spr_h5r_limits lim;
  spr_h5r_limits_default(&lim);
  lim.cpu_s = 1;
  spr_h5r_set_limits(&lim);
  return spr_test_run("device", tests);
}
