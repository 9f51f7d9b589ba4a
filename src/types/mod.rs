//! Domain types shared by every capability: products, events, money, request context and the
//! request/response pairs of search, recommend, chat and forecast.
//!
//! Every struct is `#[non_exhaustive]`: build it with `new(...)` and the `with_*` methods, so
//! that adding a field later is not a breaking change for you.

/// Generates `with_*` builder methods: `setters!(Type { field: Ty => with_field, ... })`.
/// Each setter takes `impl Into<Ty>`; `?` marks an `Option<Ty>` field set to `Some`; `=` and
/// `some` take exactly `Ty` (numbers, so that literals infer).
macro_rules! setters {
    ($ty:ty { $( $(#[$m:meta])* $field:ident : $fty:ty => $name:ident $(, $opt:tt)? ;)* }) => {
        impl $ty {
            $( setters!(@one $(#[$m])* $field : $fty => $name $(, $opt)?); )*
        }
    };
    (@one $(#[$m:meta])* $field:ident : $fty:ty => $name:ident) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: impl Into<$fty>) -> Self {
            self.$field = value.into();
            self
        }
    };
    (@one $(#[$m:meta])* $field:ident : $fty:ty => $name:ident, =) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: $fty) -> Self {
            self.$field = value;
            self
        }
    };
    (@one $(#[$m:meta])* $field:ident : $fty:ty => $name:ident, some) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: $fty) -> Self {
            self.$field = Some(value);
            self
        }
    };
    (@one $(#[$m:meta])* $field:ident : $fty:ty => $name:ident, ?) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: impl Into<$fty>) -> Self {
            self.$field = Some(value.into());
            self
        }
    };
}

mod catalog;
mod chat;
mod common;
mod forecast;
mod recommend;
mod search;

pub use catalog::*;
pub use chat::*;
pub use common::*;
pub use forecast::*;
pub use recommend::*;
pub use search::*;
