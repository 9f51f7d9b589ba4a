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

/// The standard normal quantile function (Acklam's rational approximation refined by one
/// Halley step; absolute error below 1e-9).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let plow = 0.02425;
    let x = if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Halley step against the exact CDF.
    let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Complementary error function (Numerical Recipes' erfcc, relative error below 1.2e-7),
/// enough for one refinement step of [`normal_quantile`].
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
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
