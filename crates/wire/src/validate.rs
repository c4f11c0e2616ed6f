//! Finds enum values a model does not list, anywhere in a decoded request.
//!
//! Enums decode leniently (unknown values become `Unknown(..)`) so a bad
//! value is not a `SerializationException`; instead `dispatch` runs this
//! check and answers the service's invalid-parameter error naming the member
//! path and the allowed values, as AWS services do.

use crate::{ApiError, Blob, Timestamp};
use std::collections::BTreeMap;

/// An enum value the model does not list, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEnum {
    /// Member path, e.g. `containerDefinitions[0].portMappings[1].protocol`.
    pub path: String,
    pub value: String,
    pub allowed: &'static [&'static str],
}

pub trait CheckEnums {
    fn check_enums(&self) -> Result<(), UnknownEnum>;
}

/// Checks a structure member, prefixing its name to the path of a failure.
pub fn member<T: CheckEnums + ?Sized>(name: &str, v: &T) -> Result<(), UnknownEnum> {
    v.check_enums().map_err(|mut e| {
        e.path = if e.path.is_empty() || e.path.starts_with('[') {
            format!("{name}{}", e.path)
        } else {
            format!("{name}.{}", e.path)
        };
        e
    })
}

/// The check a generated enum runs on itself.
pub fn enum_value(
    known: bool,
    value: &str,
    allowed: &'static [&'static str],
) -> Result<(), UnknownEnum> {
    if known {
        Ok(())
    } else {
        Err(UnknownEnum {
            path: String::new(),
            value: value.to_string(),
            allowed,
        })
    }
}

/// Runs the check on a request; a failure becomes `code` (a 400).
pub fn reject_unknown_enums<T: CheckEnums>(input: &T, code: &'static str) -> Result<(), ApiError> {
    input.check_enums().map_err(|e| {
        ApiError::client(
            code,
            format!(
                "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                e.value,
                e.path,
                e.allowed.join(", ")
            ),
        )
    })
}

impl<T: CheckEnums> CheckEnums for Option<T> {
    fn check_enums(&self) -> Result<(), UnknownEnum> {
        self.as_ref().map_or(Ok(()), T::check_enums)
    }
}

impl<T: CheckEnums> CheckEnums for Box<T> {
    fn check_enums(&self) -> Result<(), UnknownEnum> {
        (**self).check_enums()
    }
}

impl<T: CheckEnums> CheckEnums for Vec<T> {
    fn check_enums(&self) -> Result<(), UnknownEnum> {
        for (i, v) in self.iter().enumerate() {
            v.check_enums().map_err(|mut e| {
                e.path = if e.path.is_empty() || e.path.starts_with('[') {
                    format!("[{i}]{}", e.path)
                } else {
                    format!("[{i}].{}", e.path)
                };
                e
            })?;
        }
        Ok(())
    }
}

impl<K: CheckEnums, V: CheckEnums> CheckEnums for BTreeMap<K, V> {
    fn check_enums(&self) -> Result<(), UnknownEnum> {
        for (k, v) in self {
            k.check_enums()?;
            v.check_enums()?;
        }
        Ok(())
    }
}

macro_rules! nothing_to_check {
    ($($t:ty),*) => {$(
        impl CheckEnums for $t {
            fn check_enums(&self) -> Result<(), UnknownEnum> { Ok(()) }
        }
    )*};
}
nothing_to_check!(
    String,
    i32,
    i64,
    bool,
    f64,
    Timestamp,
    Blob,
    serde_json::Value
);
