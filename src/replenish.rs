//! Replenishment: from a forecast's quantiles to a reorder point and an order quantity.
//!
//! Merchants forecast to decide what to buy. Given a [`SeriesForecast`] with point values and
//! at least two quantile levels, the stock position and a policy (lead time, review period,
//! service level), [`replenish`] computes:
//!
//! - the demand over the protection interval (lead time + review period),
//! - the safety stock the forecast's uncertainty implies at the service level: the per-step
//!   spread is read off the quantiles (`(q_hi - q_lo) / (z(q_hi) - z(q_lo))`), steps are added
//!   as independent variances,
//! - the reorder point (demand + safety stock) and, when the inventory position (on hand + on
//!   order) is at or below it, the order quantity that brings the position back up to it,
//!   rounded up to the pack size and at least the minimum order quantity.
//!
//! The result is a suggestion for a person or a threshold rule to approve: it moves money.
//!
//! ```
//! use merchant_ai::{SeriesForecast, QuantileForecast};
//! use merchant_ai::replenish::{replenish, ReplenishmentPolicy, StockPosition};
//! let f = SeriesForecast::new("sku-1", vec![10.0; 14], "ses").with_quantiles(vec![
//!     QuantileForecast::new(0.1, vec![6.0; 14]),
//!     QuantileForecast::new(0.9, vec![14.0; 14]),
//! ]);
//! let r = replenish(&f, &StockPosition::new(40.0), &ReplenishmentPolicy::new(7)).unwrap();
//! assert_eq!(r.protection_demand, 80.0);          // 7 days lead + 1 day review, 10/day
//! assert!(r.safety_stock > 0.0 && r.reorder_now);
//! assert!(r.order_quantity >= r.reorder_point - 40.0);
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::SeriesForecast;

/// Stock of one item.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StockPosition {
    /// Units on hand.
    pub on_hand: f64,
    /// Units ordered and not yet received.
    #[serde(default)]
    pub on_order: f64,
}

impl StockPosition {
    /// `on_hand` units, nothing on order.
    pub fn new(on_hand: f64) -> Self {
        StockPosition {
            on_hand,
            on_order: 0.0,
        }
    }
    /// Sets the units on order.
    #[must_use]
    pub fn with_on_order(mut self, on_order: f64) -> Self {
        self.on_order = on_order;
        self
    }
}

/// How an item is replenished.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentPolicy {
    /// Periods (forecast steps) between ordering and receiving.
    pub lead_time: usize,
    /// Periods between two order decisions (1 = decide every period).
    pub review_period: usize,
    /// Probability of not running out during the protection interval, in (0.5, 1).
    pub service_level: f64,
    /// Smallest quantity the supplier accepts.
    pub min_order_qty: f64,
    /// Orders are multiples of this (1 = any whole unit).
    pub pack_size: f64,
}

impl ReplenishmentPolicy {
    /// Lead time in periods, daily review, 95% service level, packs of 1.
    pub fn new(lead_time: usize) -> Self {
        ReplenishmentPolicy {
            lead_time,
            review_period: 1,
            service_level: 0.95,
            min_order_qty: 0.0,
            pack_size: 1.0,
        }
    }
    /// Sets the service level.
    #[must_use]
    pub fn with_service_level(mut self, s: f64) -> Self {
        self.service_level = s;
        self
    }
    /// Sets the review period.
    #[must_use]
    pub fn with_review_period(mut self, r: usize) -> Self {
        self.review_period = r;
        self
    }
    /// Sets the minimum order quantity.
    #[must_use]
    pub fn with_min_order_qty(mut self, q: f64) -> Self {
        self.min_order_qty = q;
        self
    }
    /// Sets the pack size.
    #[must_use]
    pub fn with_pack_size(mut self, p: f64) -> Self {
        self.pack_size = p;
        self
    }
}

/// A reorder suggestion.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Replenishment {
    /// Expected demand over lead time + review period.
    pub protection_demand: f64,
    /// Extra stock for the service level.
    pub safety_stock: f64,
    /// Order when the inventory position is at or below this.
    pub reorder_point: f64,
    /// On hand + on order.
    pub inventory_position: f64,
    /// Whether to order now.
    pub reorder_now: bool,
    /// Units to order now (0 when not reordering).
    pub order_quantity: f64,
}

// The AS241 coefficients are kept exactly as published.

// Coefficients of Wichura (1988), "Algorithm AS 241: The percentage points
// of the normal distribution", Applied Statistics 37(3), as published.
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
const A: [f64; 8] = [
    3.3871328727963666080e0,
    1.3314166789178437745e+2,
    1.9715909503065514427e+3,
    1.3731693765509461125e+4,
    4.5921953931549871457e+4,
    6.7265770927008700853e+4,
    3.3430575583588128105e+4,
    2.5090809287301226727e+3,
];
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
const B: [f64; 8] = [
    1.0,
    4.2313330701600911252e+1,
    6.8718700749205790830e+2,
    5.3941960214247511077e+3,
    2.1213794301586595867e+4,
    3.9307895800092710610e+4,
    2.8729085735721942674e+4,
    5.2264952788528545610e+3,
];
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
const C: [f64; 8] = [
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
];
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
const D: [f64; 8] = [
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
];
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
const E: [f64; 8] = [
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
];
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
const F: [f64; 8] = [
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
];

/// Horner evaluation of `c[0] + c[1] x + ... + c[7] x^7`.
#[inline]
fn poly(c: &[f64; 8], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * x + k)
}

/// Inverse of the standard normal CDF (Wichura 1988, algorithm AS241
/// `PPND16`, about 1e-16 relative accuracy).
///
/// Returns `-inf`/`+inf` at 0/1 and `NaN` outside `[0, 1]` or for `NaN`.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let r = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        let r = r - 1.6;
        poly(&C, r) / poly(&D, r)
    } else {
        let r = r - 5.0;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 { -val } else { val }
}

/// Computes the reorder suggestion for one forecast series. Errors name what is missing: a
/// failed series, too short a horizon for lead time + review period, fewer than two quantile
/// levels, a service level outside (0.5, 1).
pub fn replenish(
    forecast: &SeriesForecast,
    stock: &StockPosition,
    policy: &ReplenishmentPolicy,
) -> Result<Replenishment> {
    let id = &forecast.id;
    if let Some(e) = &forecast.error {
        return Err(Error::invalid_request(format!(
            "series {id:?} has no forecast: {}",
            e.message
        )));
    }
    if !(policy.service_level > 0.5 && policy.service_level < 1.0) {
        return Err(Error::invalid_request(format!(
            "service_level must be in (0.5, 1), got {}",
            policy.service_level
        )));
    }
    if policy.review_period == 0 {
        return Err(Error::invalid_request("review_period must be at least 1"));
    }
    if policy.pack_size.is_nan() || policy.pack_size <= 0.0 || policy.min_order_qty < 0.0 {
        return Err(Error::invalid_request(
            "pack_size must be positive and min_order_qty not negative",
        ));
    }
    let steps = policy.lead_time + policy.review_period;
    if forecast.point.len() < steps {
        return Err(Error::invalid_request(format!(
            "series {id:?}: the forecast covers {} steps, lead time + review period need {steps}",
            forecast.point.len()
        )));
    }
    let mut qs: Vec<_> = forecast
        .quantiles
        .iter()
        .filter(|q| q.level > 0.0 && q.level < 1.0 && q.level != 0.5 && q.values.len() >= steps)
        .collect();
    qs.sort_by(|a, b| a.level.total_cmp(&b.level));
    let (lo, hi) = match (qs.first(), qs.last()) {
        (Some(lo), Some(hi)) if hi.level > lo.level => (*lo, *hi),
        _ => {
            return Err(Error::invalid_request(format!(
                "series {id:?}: replenishment needs a forecast with two quantile levels (e.g. 0.1 and 0.9)"
            )));
        }
    };
    let dz = normal_quantile(hi.level) - normal_quantile(lo.level);
    let mut demand = 0.0;
    let mut var = 0.0;
    for t in 0..steps {
        demand += forecast.point[t].max(0.0);
        let sigma = ((hi.values[t] - lo.values[t]) / dz).max(0.0);
        var += sigma * sigma;
    }
    let safety = normal_quantile(policy.service_level) * var.sqrt();
    let reorder_point = demand + safety;
    let position = stock.on_hand + stock.on_order;
    let reorder_now = position <= reorder_point;
    let order_quantity = if reorder_now {
        let need = (reorder_point - position).max(policy.min_order_qty);
        (need / policy.pack_size).ceil() * policy.pack_size
    } else {
        0.0
    };
    Ok(Replenishment {
        protection_demand: demand,
        safety_stock: safety,
        reorder_point,
        inventory_position: position,
        reorder_now,
        order_quantity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::QuantileForecast;

    #[test]
    fn normal_quantile_known_values() {
        for (p, z) in [
            (0.5, 0.0),
            (0.95, 1.6448536269514722),
            (0.975, 1.959963984540054),
            (0.9, 1.2815515655446004),
            (0.01, -2.3263478740408408),
            (0.999, 3.090232306167813),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-7, "z({p})");
        }
    }

    fn f() -> SeriesForecast {
        SeriesForecast::new("a", vec![10.0; 10], "m").with_quantiles(vec![
            QuantileForecast::new(0.1, vec![10.0 - 1.2815515655446004 * 2.0; 10]),
            QuantileForecast::new(0.9, vec![10.0 + 1.2815515655446004 * 2.0; 10]),
        ])
    }

    #[test]
    fn safety_stock_from_interval() {
        // sigma 2 per step, 4 steps -> sigma 4; z(0.95) * 4 = 6.58
        let r = replenish(
            &f(),
            &StockPosition::new(100.0),
            &ReplenishmentPolicy::new(3),
        )
        .unwrap();
        assert!((r.protection_demand - 40.0).abs() < 1e-9);
        assert!((r.safety_stock - 1.6448536 * 4.0).abs() < 1e-5);
        assert!(!r.reorder_now);
        assert_eq!(r.order_quantity, 0.0);
    }

    #[test]
    fn order_rounds_to_packs_and_minimum() {
        let p = ReplenishmentPolicy::new(3)
            .with_pack_size(12.0)
            .with_min_order_qty(30.0);
        let r = replenish(&f(), &StockPosition::new(20.0).with_on_order(5.0), &p).unwrap();
        assert!(r.reorder_now);
        assert_eq!(r.order_quantity % 12.0, 0.0);
        assert!(r.order_quantity >= 30.0);
        assert!(r.inventory_position + r.order_quantity >= r.reorder_point);
    }

    #[test]
    fn clear_errors() {
        let short = replenish(
            &f(),
            &StockPosition::new(0.0),
            &ReplenishmentPolicy::new(20),
        );
        assert!(short.unwrap_err().message().contains("covers 10 steps"));
        let no_q = SeriesForecast::new("b", vec![1.0; 10], "m");
        assert!(
            replenish(
                &no_q,
                &StockPosition::new(0.0),
                &ReplenishmentPolicy::new(2)
            )
            .unwrap_err()
            .message()
            .contains("two quantile levels")
        );
        let bad = ReplenishmentPolicy::new(2).with_service_level(1.0);
        assert!(replenish(&f(), &StockPosition::new(0.0), &bad).is_err());
    }
}
