//! Integers as JSON Schema counts them: `type: integer` admits any number with a zero fractional part, so
//! `337.0` is as much an integer as `337`. serde reads only the latter into a `u32`; request fields that the
//! published schema calls integers read through here (`#[serde(deserialize_with = "crate::int::exact")]`) so
//! the server accepts what its schema allows. A fraction, a value out of the field's range or a non-number is
//! still refused.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// An integer field that also reads a float with no fractional part.
pub(crate) fn exact<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + TryFrom<i64>,
{
    deserializer.deserialize_any(Exact(PhantomData))
}

/// [`exact`] for an optional field (`null` or absent is `None`; pair it with `#[serde(default)]`).
pub(crate) fn exact_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + TryFrom<i64>,
{
    deserializer.deserialize_option(Optional(PhantomData))
}

struct Exact<T>(PhantomData<T>);

impl<T: TryFrom<u64> + TryFrom<i64>> Visitor<'_> for Exact<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer in the range of {}", std::any::type_name::<T>())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        let whole = v.is_finite() && v.fract() == 0.0;
        // Every whole f64 inside ±2^63 converts exactly; the bounds keep `as` from saturating.
        if whole && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            return self.visit_u64(v as u64);
        }
        if whole && (-9_223_372_036_854_775_808.0..0.0).contains(&v) {
            return self.visit_i64(v as i64);
        }
        Err(E::invalid_type(Unexpected::Float(v), &self))
    }
}

struct Optional<T>(PhantomData<T>);

impl<'de, T: TryFrom<u64> + TryFrom<i64>> Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "null or an integer in the range of {}",
            std::any::type_name::<T>()
        )
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        exact(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "super::exact")]
        width: u32,
        #[serde(default, deserialize_with = "super::exact_opt")]
        size: Option<u64>,
    }

    fn read(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_floats_read_as_integers() {
        let p = read(r#"{"width": 337.0, "size": 1008.0}"#).unwrap();
        assert_eq!((p.width, p.size), (337, Some(1008)));
        let p = read(r#"{"width": 337}"#).unwrap();
        assert_eq!((p.width, p.size), (337, None));
        assert_eq!(read(r#"{"width": 1, "size": null}"#).unwrap().size, None);
        assert_eq!(read(r#"{"width": 0.0, "size": 1e3}"#).unwrap().size, Some(1000));
    }

    #[test]
    fn fractions_out_of_range_and_non_numbers_are_refused() {
        for bad in [
            r#"{"width": 337.5}"#,
            r#"{"width": -1}"#,
            r#"{"width": -1.0}"#,
            r#"{"width": 4294967296}"#,
            r#"{"width": 4294967296.0}"#,
            r#"{"width": 1e300}"#,
            r#"{"width": "337"}"#,
            r#"{"width": null}"#,
            r#"{"width": 1, "size": -2}"#,
            r#"{"width": 1, "size": 0.5}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
