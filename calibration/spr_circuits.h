/* spr_circuits.h - netlists and SPICE measurements for the calibration.
 *
 * The calibration fits model parameters to what these functions measure
 * with ngspice (through spr_spice_run(), one forked child per job, see
 * spr_spice.h).  Three circuits, documented with netlist excerpts in
 * docs/spice.md:
 *
 * 1. A ReRAM cell, linear (a resistor 1/G) or nonlinear with the
 *    Stanford-PKU form I = I0 exp(-gap/g0) sinh(V/V0), a behavioural
 *    B-source.  A programmed small-signal conductance G (the slope at
 *    V = 0) maps to the gap by
 *        G = I0 exp(-gap/g0) / V0   <=>   gap = g0 ln(I0 / (G V0)),
 *    so the cell law is I = G V0 sinh(V/V0): G V for |V| << V0, and the
 *    linear cell again as V0 -> infinity.
 * 2. The crossbar of crossbar/spr_nodal.h (word-line and bit-line segment
 *    resistances, ideal row drivers, column sense nodes held at 0 V by
 *    ammeters) with either cell, optional capacitances to ground at every
 *    word-line and bit-line node, and DC or pulsed row drivers.
 * 3. A current comparator: each input current flows into a sense
 *    resistor R_s returned to a bias V_cm (standing for a transimpedance
 *    front end: V_in = V_cm + I R_s), a 5-transistor OTA (NMOS pair
 *    M1/M2, PMOS mirror load M3/M4, NMOS tail M5 biased by V_bn) and an
 *    inverter (M6/M7) driving C_load.  The output is high when the column
 *    current exceeds the reference current.  Level-1 MOS models.
 *
 * Every measurement can return the deck it ran (netlist_text, when not
 * NULL): the netlist lines, then a .control block with the driver's
 * "optran 1 1 1 0 0 0" and the ngspice commands, then .end, joined by
 * newlines; malloc'ed, the caller frees it;
 * NULL on failure.  Loaded as is through ngSpice_Circ its .control block
 * reruns the analysis.
 *
 * Errors: SPR_EINVAL for bad arguments (the message names the value),
 * SPR_ESPICE for ngspice failures and for measurements that find no
 * answer (no output crossing), SPR_ENOMEM, SPR_EIO; see spr_spice.h.
 * timeout_s limits each ngspice job (seconds, finite, > 0).  Like every
 * SPICE job these fork: call them from a single-threaded program.
 */
#ifndef SPR_CIRCUITS_H
#define SPR_CIRCUITS_H

#include <stdint.h>

#include "spr_spice.h"

/* ------------------------------------------------------------- the cell */

/* Cell laws of the crossbar netlist. */
enum spr_circ_cell { SPR_CIRC_CELL_LINEAR = 0, SPR_CIRC_CELL_SINH = 1 };

/* Parameters of the nonlinear cell I = I0 exp(-gap/g0) sinh(V/V0). */
typedef struct {
  double i0_A; /* I0, amperes (> 0) */
  double g0_m; /* g0, metres (> 0) */
  double v0_V; /* V0, volts (> 0) */
} spr_circ_sinh;

/* Defaults: the default card of the Stanford-PKU RRAM model (Jiang et
 * al., IEEE TED 2016): I0 = 1e-3 A, g0 = 0.25e-9 m, V0 = 0.25 V. */
void spr_circ_sinh_default(spr_circ_sinh *p);

/* The gap of a cell of small-signal conductance G_S (siemens, > 0):
 * gap = g0 ln(I0 / (G V0)), metres (may be negative when G V0 > I0, which
 * is outside the physical model but keeps the law I = G V0 sinh(V/V0)).
 * Returns 0 or SPR_EINVAL (bad parameters or G; the message names it). */
int spr_circ_sinh_gap(const spr_circ_sinh *p, double G_S, double *gap_m);

/* Netlist of one nonlinear cell between node t and ground, driven by
 * "Vin t 0 DC 0" (sweep it with "dc vin ..."): the cell current from t to
 * ground is -vin#branch.  lines/n_lines as for spr_spice_crossbar_netlist
 * (free with spr_spice_netlist_free).  Returns 0, SPR_EINVAL, SPR_ENOMEM. */
int spr_circ_cell_netlist(const spr_circ_sinh *p, double G_S, char ***lines, int *n_lines);

/* Single-cell I-V of the nonlinear law by a DC sweep of the cell voltage
 * from v_min_V to v_max_V (v_min_V < v_max_V) in n_points (2..100000)
 * equal steps.  V_out, I_out: n_points outputs, the swept voltage (V, as
 * ngspice stepped it) and the cell current (A, positive from t into the
 * cell).  Returns 0, SPR_EINVAL, SPR_ESPICE (including a sweep that did
 * not give n_points points), SPR_ENOMEM, SPR_EIO. */
int spr_circ_cell_iv(const spr_circ_sinh *p, double G_S, double v_min_V, double v_max_V,
                     int n_points, double *V_out, double *I_out, char **netlist_text,
                     double timeout_s);

/* --------------------------------------------------------- the crossbar */

/* One crossbar array.  G and V are borrowed (not copied, not freed). */
typedef struct {
  int rows, cols;     /* R, C >= 1 */
  const double *G;    /* R x C programmed conductances, row-major, S (finite, >= 0;
                         0 omits the cell) */
  const double *V;    /* R row voltages, V (DC level, or the pulse amplitude) */
  double r_wl_ohm;    /* word-line segment resistance (>= 0; 0 = a 0 V short) */
  double r_bl_ohm;    /* bit-line segment resistance (>= 0; 0 = a 0 V short) */
  double c_wl_F;      /* capacitance to ground of each word-line node (>= 0) */
  double c_bl_F;      /* capacitance to ground of each bit-line node (>= 0) */
  int cell;           /* enum spr_circ_cell */
  spr_circ_sinh sinh; /* the nonlinear law (used when cell is SINH) */
  double temp_C;      /* circuit temperature (.temp), Celsius (> -273.15) */
} spr_circ_xbar;

/* Defaults: no array (rows = cols = 0, G = V = NULL: set them), no wire
 * resistance or capacitance, linear cells, spr_circ_sinh_default(),
 * temp_C = 27 (ngspice's default). */
void spr_circ_xbar_init(spr_circ_xbar *x);

/* Trapezoidal read pulse on every row: PULSE(0 V_i delay rise fall width)
 * (ngspice's order), simulated to t_stop_s with step and largest internal
 * step t_step_s. */
typedef struct {
  double delay_s, rise_s, width_s, fall_s; /* delay >= 0, others > 0 */
  double t_stop_s; /* >= delay + rise + width + fall */
  double t_step_s; /* > 0, <= min(rise, fall) */
} spr_circ_pulse;

/* Defaults: delay 0.1 ns, rise 0.1 ns, width 5 ns, fall 0.1 ns, stop 8 ns,
 * step 5 ps. */
void spr_circ_pulse_default(spr_circ_pulse *p);

/* Netlist of the crossbar x with the topology of
 * spr_spice_crossbar_netlist() (spr_spice.h) plus:
 *   Bc<i>_<j> w<i>_<j> b<i>_<j> I=I0*exp(-gap/g0)*sinh(v(w<i>_<j>,b<i>_<j>)/V0)
 *                                       nonlinear cell (cell = SINH)
 *   Cw<i>_<j> w<i>_<j> 0 c_wl, Cb<i>_<j> b<i>_<j> 0 c_bl   (when > 0)
 *   Vd<i> d<i> 0 PULSE(0 V[i] ...)      drivers when pulse is not NULL
 *   .temp temp_C
 * Returns 0, SPR_EINVAL (the message names the value) or SPR_ENOMEM; on
 * failure *lines is NULL and *n_lines 0. */
int spr_circ_xbar_netlist(const spr_circ_xbar *x, const spr_circ_pulse *pulse, char ***lines,
                          int *n_lines);

/* Column currents by an operating point: I_A[j] = vs<j>#branch, the
 * current into sense node j (A, C outputs), with either cell law. */
int spr_circ_xbar_currents(const spr_circ_xbar *x, double *I_A, char **netlist_text,
                           double timeout_s);

/* Thermal noise of the current into sense node col (0 <= col < C): the
 * ammeter's current drives a 1-ohm CCVS "Hn nout 0 vs<col> 1", and
 * "noise v(nout) vd0 dec ppd f_lo f_hi" integrates the output noise over
 * [f_lo_Hz, f_hi_Hz] (0 < f_lo < f_hi): *i_rms_A = noise2's onoise_total
 * (V rms across 1 ohm = A rms).  It includes every resistor (cells and
 * wires, 4kT/R each at temp_C); capacitances shape it.  Linear cells
 * only: ngspice's B-sources are noiseless, so cell = SINH is SPR_EINVAL.
 * points_per_decade: 1..1000. */
int spr_circ_xbar_noise(const spr_circ_xbar *x, int col, double f_lo_Hz, double f_hi_Hz,
                        int points_per_decade, double *i_rms_A, char **netlist_text,
                        double timeout_s);

/* Energy drawn from the row drivers during one read pulse:
 *   E = integral over [0, t_stop] of sum_i v(d<i>) * (-vd<i>#branch) dt
 * (J; the trapezoid rule over ngspice's time points, which the largest
 * step t_step_s bounds).  It includes the charge returned to the drivers
 * on the falling edge, so with capacitances only E = dissipated energy.
 * Energy per MAC = E / (R C) for the fits. */
int spr_circ_xbar_read_energy(const spr_circ_xbar *x, const spr_circ_pulse *pulse,
                              double *energy_J, char **netlist_text, double timeout_s);

/* Energy delivered by n_sources grounded voltage sources over [t0_s, t1_s]
 * of a transient: E = integral of sum_k v(nodes[k]) * (-sources[k]#branch) dt,
 * with sources[k] a voltage source from nodes[k] to ground (lower-case
 * names).  tran_cmd: the transient command ("tran 1p 5n ..."), which must
 * cover [t0_s, t1_s] (0 <= t0_s < t1_s).  The trapezoid rule over
 * ngspice's time points, interpolated linearly at t0 and t1. */
int spr_circ_source_energy(const char *const *lines, int n_lines, const char *tran_cmd,
                           const char *const *sources, const char *const *nodes,
                           int n_sources, double t0_s, double t1_s, double *energy_J,
                           double timeout_s);

/* ------------------------------------------------------- the comparator */

/* Transistors M1..M7 of the comparator, in this order: M1 (NMOS, gate on
 * the reference input inn), M2 (NMOS, gate on the column input inp), M3
 * (PMOS diode of the mirror), M4 (PMOS mirror output), M5 (NMOS tail),
 * M6 (inverter NMOS), M7 (inverter PMOS). */
enum { SPR_CIRC_CMP_N_MOS = 7 }; /* transistors, NMOS and PMOS */

typedef struct {
  double vdd_V;           /* supply (> 0) */
  double vcm_V;           /* bias of the sense resistors (> 0) */
  double vbn_V;           /* tail gate bias (> 0) */
  double r_sense_ohm;     /* R_s of each input (> 0) */
  double c_load_F;        /* load of the inverter output (>= 0) */
  double w_m[SPR_CIRC_CMP_N_MOS], l_m[SPR_CIRC_CMP_N_MOS]; /* sizes (> 0) */
  double vto_n_V, vto_p_V;       /* level-1 VTO (NMOS > 0, PMOS < 0) */
  double kp_n_AV2, kp_p_AV2;     /* KP = mu Cox, A/V^2 (> 0) */
  double lambda_n_V, lambda_p_V; /* LAMBDA, 1/V (>= 0) */
  double gamma_sqrtV, phi_V;     /* body effect GAMMA (>= 0), PHI (> 0) */
  double tox_m;                  /* TOX, gate capacitance (> 0) */
  double cgso_Fm, cgdo_Fm;       /* overlap capacitances per width, F/m (>= 0) */
  double avt_n_Vm, avt_p_Vm;     /* Pelgrom A_VT, V m (>= 0) */
  double temp_C;                 /* .temp, Celsius */
} spr_circ_cmp;

/* Defaults: VDD 1.8 V, V_cm 0.8 V, V_bn 0.7 V, R_s 20 kohm, C_load 5 fF;
 * W/L (um) M1,M2 4/0.5, M3,M4 4/0.5, M5 2/1, M6 1/0.18, M7 2.5/0.18;
 * level-1 cards: NMOS VTO 0.45 V, KP 200 uA/V^2, LAMBDA 0.05/V; PMOS VTO
 * -0.45 V, KP 80 uA/V^2, LAMBDA 0.05/V; GAMMA 0.4 V^0.5, PHI 0.8 V,
 * TOX 4 nm, CGSO = CGDO = 0.3 nF/m; A_VT 3.5 mV um (NMOS and PMOS);
 * 27 C.  A generic 0.18 um-like process, not a foundry card. */
void spr_circ_cmp_default(spr_circ_cmp *p);

/* Per-transistor VTO shifts of Monte Carlo sample `sample` (>= 0) of
 * seed: dvto_V[k] = A_VT / sqrt(W_k L_k) * z_k, z_k standard normal from
 * the keyed stream (seed, -1, -1, sample, SPR_STREAM_SPICE_MC) of
 * core/spr_rng.h, drawn for M1..M7 in order (A_VT of NMOS or PMOS).
 * Reproducible for any process or thread.  Returns 0, SPR_EINVAL,
 * SPR_ENOMEM. */
int spr_circ_cmp_mismatch(const spr_circ_cmp *p, uint64_t seed, int sample,
                          double dvto_V[SPR_CIRC_CMP_N_MOS]);

/* Netlist of the comparator with VTO shifts dvto_V (NULL: none; added to
 * each transistor's own model card, so a positive shift raises an NMOS
 * threshold and lowers a PMOS |VT|), a DC column current i_col_A and a
 * reference current i_ref_A (A, finite, >= 0):
 *   Icol 0 inp DC i_col    Iref 0 inn DC i_ref
 *   Rsp inp cm R_s         Rsn inn cm R_s        Vcm cm 0 DC V_cm
 *   M1 x inn tail 0 mod1   M2 o1 inp tail 0 mod2
 *   M3 x x vdd vdd mod3    M4 o1 x vdd vdd mod4  M5 tail bn 0 0 mod5
 *   M6 out o1 0 0 mod6     M7 out o1 vdd vdd mod7  Cl out 0 C_load
 * Returns 0, SPR_EINVAL, SPR_ENOMEM. */
int spr_circ_cmp_netlist(const spr_circ_cmp *p, const double *dvto_V, double i_col_A,
                         double i_ref_A, char ***lines, int *n_lines);

/* Trip current: the column current at which v(out) crosses VDD/2
 * (rising), from a DC sweep of Icol over i_ref +- span_A in 200 steps,
 * then a sweep of 100 steps over the bracketing step, interpolated
 * linearly (resolution about span / 1e4, interpolation error far below
 * it).  Input-referred offset = *i_trip_A - i_ref_A.  i_ref_A > 0,
 * 0 < span_A <= i_ref_A.  SPR_ESPICE when the output does not cross in
 * the span.  netlist_text: the deck of the fine sweep. */
int spr_circ_cmp_trip(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                      double span_A, double *i_trip_A, char **netlist_text, double timeout_s);

/* Input-referred current noise: the trip current as above (span_A), then
 * "noise v(o1) icol dec ppd f_lo f_hi" with Icol biased at the trip point
 * (the OTA output, before the inverter): *i_rms_A = inoise_total (A rms
 * over [f_lo_Hz, f_hi_Hz]: sense resistors and channel thermal noise;
 * level-1 cards have no flicker noise).  *i_trip_A (may be NULL) receives
 * the bias.  netlist_text: the deck of the noise run. */
int spr_circ_cmp_noise(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                       double span_A, double f_lo_Hz, double f_hi_Hz, int points_per_decade,
                       double *i_trip_A, double *i_rms_A, char **netlist_text,
                       double timeout_s);

/* Noise spectra of the comparator at one bias. */
typedef struct {
  int n;                 /* frequency points */
  double *f_Hz;          /* n frequencies */
  double *onoise_V;      /* output noise density of v(o1), V/sqrt(Hz) */
  double *inoise_A;      /* input-referred density (onoise / |gain from Icol|), A/sqrt(Hz) */
  double onoise_total_V; /* v(o1) noise over [f_lo, f_hi], V rms */
  double inoise_total_A; /* input-referred noise over [f_lo, f_hi], A rms */
} spr_circ_cmp_spectrum;

/* "noise v(o1) icol dec ppd f_lo f_hi" with Icol biased at i_col_A (e.g. a
 * trip current from spr_circ_cmp_trip), keeping the spectra: out (freed
 * with spr_circ_cmp_spectrum_free, also after errors) gets noise1's
 * frequency, onoise_spectrum and inoise_spectrum and noise2's totals.
 * |gain(f)| = onoise_V / inoise_A (V per A).  Returns 0, SPR_EINVAL,
 * SPR_ESPICE, SPR_ENOMEM, SPR_EIO. */
int spr_circ_cmp_noise_spectrum(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                                double i_col_A, double f_lo_Hz, double f_hi_Hz,
                                int points_per_decade, spr_circ_cmp_spectrum *out,
                                char **netlist_text, double timeout_s);
void spr_circ_cmp_spectrum_free(spr_circ_cmp_spectrum *s);

/* An input step for the comparator transient. */
typedef struct {
  double t0_s;     /* start of the step (> 0; the circuit settles before) */
  double rise_s;   /* duration of the step (> 0) */
  double window_s; /* simulated time after t0, and the energy window (> rise) */
  double t_step_s; /* transient step and largest internal step (> 0) */
} spr_circ_step;

/* Defaults: t0 2 ns, rise 10 ps, window 10 ns, step 5 ps. */
void spr_circ_step_default(spr_circ_step *s);

/* What one decision costs. */
typedef struct {
  double delay_s;    /* 50% crossing of v(out) minus the middle of the input step */
  double energy_J;   /* VDD * integral of the supply current over [t0, t0 + window] */
  double p_static_W; /* VDD * supply current just before the step */
} spr_circ_cmp_decision;

/* Transient of a decision: Icol steps (PWL) from i_center - overdrive to
 * i_center + overdrive at t0 (i_center_A: e.g. the trip current from
 * spr_circ_cmp_trip, or i_ref_A; overdrive_A > 0, i_center - overdrive
 * >= 0).  SPR_ESPICE when v(out) is not below VDD/2 at t0 or does not
 * cross it before t0 + window.  energy_J - p_static_W * window is the
 * dynamic part. */
int spr_circ_cmp_step(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                      double i_center_A, double overdrive_A, const spr_circ_step *s,
                      spr_circ_cmp_decision *out, char **netlist_text, double timeout_s);

#endif
