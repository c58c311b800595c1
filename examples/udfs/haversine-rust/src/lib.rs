//! # haversine_km
//!
//! A user-defined function (the `udf` world): the great-circle distance in
//! kilometres between two points given as latitude and longitude in
//! degrees, rounded to 0.1 km. Register it and call it from an expression:
//!
//! ```yaml
//! udfs:
//!   haversine_km: { plugin: ./haversine.wasm }
//! stages:
//!   distance:
//!     plugin: project
//!     inputs: [trips]
//!     params:
//!       set: { km: "haversine_km(from.lat, from.lon, to.lat, to.lon)" }
//! ```
//!
//! or in SQL: `CREATE FUNCTION haversine_km AS './haversine.wasm';`.
//!
//! A `null` argument gives `null` (SQL's rule for scalar functions); a
//! non-number, an out-of-range coordinate or the wrong number of arguments
//! is an error, which dead-letters the event that made the call.
#![deny(missing_docs)]

use serde_json::Value;

/// Mean Earth radius (IUGG), in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The UDF: `haversine_km(lat1, lon1, lat2, lon2)`.
pub fn haversine_km(args: &[Value]) -> Result<Value, String> {
    let [lat1, lon1, lat2, lon2] = args else {
        return Err(format!(
            "haversine_km(lat1, lon1, lat2, lon2) takes 4 arguments, found {}",
            args.len()
        ));
    };
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let deg = |v: &Value, name: &str, max: f64| -> Result<f64, String> {
        let d = v
            .as_f64()
            .ok_or_else(|| format!("haversine_km: {name} must be a number, found {v}"))?;
        if d.abs() > max {
            return Err(format!(
                "haversine_km: {name} = {d} is outside -{max}..{max}"
            ));
        }
        Ok(d.to_radians())
    };
    let (p1, l1) = (deg(lat1, "lat1", 90.0)?, deg(lon1, "lon1", 180.0)?);
    let (p2, l2) = (deg(lat2, "lat2", 90.0)?, deg(lon2, "lon2", 180.0)?);
    let a = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * ((l2 - l1) / 2.0).sin().powi(2);
    let km = 2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin();
    Ok(serde_json::json!((km * 10.0).round() / 10.0))
}

sluice_sdk::export_udf!(haversine_km);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paris_to_london_is_about_344_km() {
        let km = haversine_km(&[
            json!(48.8566),
            json!(2.3522),
            json!(51.5074),
            json!(-0.1278),
        ]);
        assert_eq!(km, Ok(json!(343.6)));
    }

    #[test]
    fn a_null_argument_gives_null() {
        assert_eq!(
            haversine_km(&[Value::Null, json!(0), json!(0), json!(0)]),
            Ok(Value::Null)
        );
    }

    #[test]
    fn a_bad_argument_is_an_error_naming_it() {
        assert_eq!(
            haversine_km(&[json!("north"), json!(0), json!(0), json!(0)]),
            Err("haversine_km: lat1 must be a number, found \"north\"".to_string())
        );
        assert_eq!(
            haversine_km(&[json!(91), json!(0), json!(0), json!(0)]),
            Err("haversine_km: lat1 = 91 is outside -90..90".to_string())
        );
        assert_eq!(
            sluice_sdk::udf::run_udf(haversine_km, b"[1,2]"),
            Err("haversine_km(lat1, lon1, lat2, lon2) takes 4 arguments, found 2".to_string())
        );
    }
}
