//! A small bounded Nelder-Mead minimiser working on stack arrays only (no
//! allocation per iteration), enough for the <= 8 parameters of the
//! exponential smoothing models.

/// Largest supported dimension.
pub(crate) const MAX_DIM: usize = 8;

/// Result of a minimisation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Minimum {
    pub x: [f64; MAX_DIM],
    pub f: f64,
}

#[inline]
fn clamp_into(x: &mut [f64], lower: &[f64], upper: &[f64]) {
    for i in 0..x.len() {
        x[i] = x[i].clamp(lower[i], upper[i]);
    }
}

/// Minimises `f` from `x0` with an initial simplex of per-coordinate `step`
/// sizes; points are projected onto the box `[lower, upper]`. Stops when the
/// spread of the simplex values falls below `ftol * |f_best| + 1e-20` or after
/// `max_evals` evaluations. Non-finite objective values are treated as +inf.
pub(crate) fn nelder_mead<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    step: &[f64],
    lower: &[f64],
    upper: &[f64],
    max_evals: usize,
    ftol: f64,
) -> Minimum {
    let d = x0.len();
    assert!((1..=MAX_DIM).contains(&d) && step.len() == d && lower.len() == d && upper.len() == d);
    let mut eval = |x: &[f64], evals: &mut usize| -> f64 {
        *evals += 1;
        let v = f(x);
        if v.is_nan() { f64::INFINITY } else { v }
    };
    let mut evals = 0usize;
    let mut simplex = [[0.0f64; MAX_DIM]; MAX_DIM + 1];
    let mut fv = [f64::INFINITY; MAX_DIM + 1];
    simplex[0][..d].copy_from_slice(x0);
    clamp_into(&mut simplex[0][..d], lower, upper);
    for i in 0..d {
        let mut v = simplex[0];
        let s = if step[i] == 0.0 { 1e-3 } else { step[i] };
        v[i] += s;
        if v[i] > upper[i] {
            v[i] = simplex[0][i] - s;
        }
        clamp_into(&mut v[..d], lower, upper);
        simplex[i + 1] = v;
    }
    for i in 0..=d {
        fv[i] = eval(&simplex[i][..d], &mut evals);
    }
    let mut order = [0usize; MAX_DIM + 1];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    loop {
        // insertion sort of the d + 1 vertices by value
        for i in 1..=d {
            let mut j = i;
            while j > 0 && fv[order[j]] < fv[order[j - 1]] {
                order.swap(j, j - 1);
                j -= 1;
            }
        }
        let best = order[0];
        let worst = order[d];
        let second = order[d - 1];
        let fb = fv[best];
        let fw = fv[worst];
        if evals >= max_evals || !fb.is_finite() || fw - fb <= ftol * fb.abs() + 1e-20 {
            return Minimum {
                x: simplex[best],
                f: fb,
            };
        }
        let mut c = [0.0f64; MAX_DIM];
        for (i, v) in simplex.iter().enumerate().take(d + 1) {
            if i != worst {
                for k in 0..d {
                    c[k] += v[k];
                }
            }
        }
        for ck in c.iter_mut().take(d) {
            *ck /= d as f64;
        }
        let xw = simplex[worst];
        let mut xr = [0.0f64; MAX_DIM];
        for k in 0..d {
            xr[k] = c[k] + (c[k] - xw[k]);
        }
        clamp_into(&mut xr[..d], lower, upper);
        let fr = eval(&xr[..d], &mut evals);
        if fr < fb {
            let mut xe = [0.0f64; MAX_DIM];
            for k in 0..d {
                xe[k] = c[k] + 2.0 * (c[k] - xw[k]);
            }
            clamp_into(&mut xe[..d], lower, upper);
            let fe = eval(&xe[..d], &mut evals);
            if fe < fr {
                simplex[worst] = xe;
                fv[worst] = fe;
            } else {
                simplex[worst] = xr;
                fv[worst] = fr;
            }
            continue;
        }
        if fr < fv[second] {
            simplex[worst] = xr;
            fv[worst] = fr;
            continue;
        }
        let mut xc = [0.0f64; MAX_DIM];
        if fr < fw {
            for k in 0..d {
                xc[k] = c[k] + 0.5 * (xr[k] - c[k]);
            }
        } else {
            for k in 0..d {
                xc[k] = c[k] + 0.5 * (xw[k] - c[k]);
            }
        }
        clamp_into(&mut xc[..d], lower, upper);
        let fc = eval(&xc[..d], &mut evals);
        if fc < fr.min(fw) {
            simplex[worst] = xc;
            fv[worst] = fc;
            continue;
        }
        // shrink towards the best vertex
        let xb = simplex[best];
        for i in 0..=d {
            if i == best {
                continue;
            }
            for k in 0..d {
                simplex[i][k] = xb[k] + 0.5 * (simplex[i][k] - xb[k]);
            }
            fv[i] = eval(&simplex[i][..d], &mut evals);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_rosenbrock() {
        let r = nelder_mead(
            |x| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2),
            &[-1.2, 1.0],
            &[0.5, 0.5],
            &[-5.0, -5.0],
            &[5.0, 5.0],
            5000,
            1e-14,
        );
        assert!(
            (r.x[0] - 1.0).abs() < 1e-3 && (r.x[1] - 1.0).abs() < 2e-3,
            "{r:?}"
        );
    }

    #[test]
    fn respects_bounds() {
        let r = nelder_mead(
            |x| (x[0] - 3.0).powi(2) + (x[1] + 1.0).powi(2),
            &[0.5, 0.5],
            &[0.1, 0.1],
            &[0.0, 0.0],
            &[1.0, 1.0],
            2000,
            1e-12,
        );
        assert!((r.x[0] - 1.0).abs() < 1e-6 && r.x[1].abs() < 1e-6, "{r:?}");
    }

    #[test]
    fn survives_infinite_objective() {
        let r = nelder_mead(|_| f64::NAN, &[0.5], &[0.1], &[0.0], &[1.0], 100, 1e-8);
        assert!(r.f.is_infinite());
    }
}
